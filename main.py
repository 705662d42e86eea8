# What the device runs: connect to AWS IoT, finish or start firmware and application updates,
# run the application, publish telemetry, and look for new jobs in the loop. Errors never end
# the loop: a dead broker is retried with a growing pause; a new firmware or application that
# cannot get through its first boot (import error, no cloud, failed self-test, a hang that the
# watchdog ends) rolls itself back.
# The application (apps.py: the slot boot.py put on sys.path) is the module `app`: imported
# once at start-up; its optional step(conn) runs at every turn of the loop, and its optional
# selftest(jobs) -> (ok, why) on its trial boot, after the library's.
# config.json may set "telemetry_s" (default 30), "watchdog_s" (default 120) and "trial_s"
# (default 120: how long a new firmware may try to reach AWS IoT before it rolls back).
import gc
import json
import time

import apps
import fota
import machine
from awsiot import Connection, load_config
from jobs import Jobs



def app_jobs():
    # The application's own jobs: job_cbk(job) of an appjobs module (yours, frozen into the
    # firmware or in /lib) returns True for a job it takes, and ends it. Without one, every job
    # that is not a firmware update ends REJECTED, so none holds up an update behind it.
    try:
        from appjobs import job_cbk
    except ImportError:
        return None
    return job_cbk


def app_targets():
    # What the files of a job other than this firmware (file ids above 0) are: an apptargets
    # module (yours, frozen or in /lib) fills fota.targets when it is imported, e.g.
    #     fota.targets[1] = targets.SmpTarget(machine.UART(1, 115200, tx=17, rx=16, rxbuf=1024))
    # Without one, such a job ends REJECTED ("file N: no target for this file id").
    try:
        import apptargets  # noqa: F401
    except Exception as e:  # one of yours that fails is reported, and the loop goes on
        if not (isinstance(e, ImportError) and "apptargets" in str(e)):
            print("app: apptargets failed: %r" % e)


def trial(jobs, app):
    # First boot of a new firmware or application: prove it works before confirming it.
    import selftest

    ok, why = selftest.run(jobs)
    if ok and app is not None and hasattr(app, "selftest"):
        try:
            ok, why = app.selftest(jobs)
        except Exception as e:
            ok, why = False, "application self-test raised %r" % e
    print("app: self-test", "passed" if ok else "failed: " + why)
    if not ok:
        fota.reject("self-test failed: " + why)


def step(app, conn):
    # One turn of the application; an exception on its trial boot rolls it back.
    if app is None or not hasattr(app, "step"):
        return
    try:
        app.step(conn)
    except Exception as e:
        print("app: application error: %r" % e)
        if fota.testing():
            fota.reject("application %s raised %r" % (fota.app_version(), e))


def main():
    cfg = load_config()
    every = cfg.get("telemetry_s", 30)
    print("app: firmware", fota.version(), "application", fota.app_version(), "thing", cfg["thing"],
          "trial" if fota.testing() else "")
    wdt = machine.WDT(timeout=cfg.get("watchdog_s", 120) * 1000)  # a hang resets the board
    fota.watchdog = wdt  # long update steps feed it
    app = apps.start(fota.reject)  # the application boot.py chose (None: there is none)
    conn = Connection(cfg)
    jobs = None
    cbk = app_jobs()
    app_targets()
    pause, fails, n = 1, 0, 0
    trial_end = time.ticks_add(time.ticks_ms(), cfg.get("trial_s", 120) * 1000)
    while True:
        wdt.feed()
        try:
            if not conn.connected():
                conn.connect()  # subscribes again to what the Jobs client asked for
                jobs = jobs or Jobs(conn)
                if fota.testing():
                    trial(jobs, app)
                fota.handle_fota_jobs(jobs, force=True, job_cbk=cbk)
                pause, fails = 1, 0
            fota.handle_fota_jobs(jobs, job_cbk=cbk)
            if not conn.connected():
                continue  # the update flow closed the session and could not reopen it
            step(app, conn)
            gc.collect()
            n += 1
            conn.publish("things/%s/telemetry" % cfg["thing"], json.dumps(
                {"n": n, "version": fota.version(), "app_version": fota.app_version(),
                 "mem_free": gc.mem_free()}))
            for _ in range(every):  # wait, but wake at once when a job notification arrives
                wdt.feed()
                if jobs.wait(1000):
                    break
        except Exception as e:
            fails += 1
            print("app: error (%d): %r; retrying in %d s" % (fails, e, pause))
            conn.close()
            if fota.testing() and time.ticks_diff(time.ticks_ms(), trial_end) > 0:
                fota.reject("no connection to AWS IoT on the trial boot: %r" % e)
            for _ in range(pause):
                wdt.feed()
                time.sleep(1)
            pause = min(pause * 2, 60)


main()
