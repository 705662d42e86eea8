# What the device runs (main.py calls fota.run): connect to AWS IoT, finish or start firmware
# and application updates, run the application, publish telemetry, and look for new jobs.
# Errors never end the loop: a dead broker is retried with a growing pause; a new firmware or
# application that cannot get through its first boot (import error, no cloud, failed
# self-test, a hang that the watchdog ends) rolls itself back.
#
# What the application takes comes as arguments (fota.run says which); the application in a
# slot (fota/apps.py) is the module `app`, imported once at start-up: its optional step(conn)
# runs at every turn of the loop, its optional selftest(jobs) -> (ok, why) on its trial boot.
# At boot and after every job it ends, the board reports what it runs to its device shadow
# (fota/shadow.py); a report that could not be sent is sent after the next connect.
# config.json may set "telemetry_s" (default 30), "watchdog_s" (default 120), "trial_s"
# (default 120: how long a new firmware may try to reach AWS IoT before it rolls back),
# "jobs_s" (default 300: the job list is looked at this often even when no notification came,
# since one can be lost on the way: they come at QoS 0) and "cpu_boost" (default true: an
# update runs the CPU at 240 MHz, fota/core.py: cpu_fast).

import gc
import json
import time

import machine
from fota import apps, core, flow, selftest, shadow
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs


def trial(jobs, checks):
    # First boot of a new firmware or application: the library's self-test, then each of
    # checks (callables jobs -> (ok, why)) in turn; rejected (a reset) at the first that fails.
    ok, why = selftest.run(jobs)
    for check in checks:
        if not ok:
            break
        try:
            ok, why = check(jobs)
        except Exception as e:
            ok, why = False, "application self-test raised %r" % e
    print("app: self-test", "passed" if ok else "failed: " + why)
    if not ok:
        core.reject("self-test failed: " + why)


def _hook(app, name):
    # The application's function of that name, if it has one (a module it imported under that
    # name is not one).
    f = getattr(app, name, None)
    return f if callable(f) else None


def step(app, conn):
    # One turn of the application; an exception on its trial boot rolls it back.
    f = _hook(app, "step")
    if f is None:
        return
    try:
        f(conn)
    except Exception as e:
        print("app: application error: %r" % e)
        if core.testing():
            core.reject("application %s raised %r" % (apps.version(), e))


def run(job_cbk=None, check=None, settings=None):
    # settings(): hands down what the application set on the package (fota/__init__.py), at
    # start and before each look at the jobs, so that what it sets later counts too.
    if settings:
        settings()
    cfg = load_config()
    every = cfg.get("telemetry_s", 30)
    look = cfg.get("jobs_s", 300) * 1000
    print("app: firmware", core.version(), "application", apps.version(), "thing", cfg["thing"],
          "trial" if core.testing() else "")
    wdt = machine.WDT(timeout=cfg.get("watchdog_s", 120) * 1000)  # a hang resets the board
    core.watchdog = wdt  # long update steps feed it
    app = apps.start(core.reject)  # the application boot.py chose (None: there is none)
    checks = [c for c in (check, _hook(app, "selftest")) if c]
    conn = Connection(cfg, feed=wdt.feed)  # the clock feeds it while it asks its sources
    jobs = None
    reported = -1  # jobs.ended at the last shadow report; -1: none yet since boot
    pause, fails, n = 1, 0, 0
    trial_end = time.ticks_add(time.ticks_ms(), cfg.get("trial_s", 120) * 1000)
    looked = time.ticks_ms()  # the last look at the job list
    while True:
        wdt.feed()
        if settings:
            settings()
        try:
            if not conn.connected():
                conn.connect()  # subscribes again to what the Jobs client asked for
                jobs = jobs or Jobs(conn)
                if core.testing():
                    trial(jobs, checks)
                flow.handle_fota_jobs(jobs, force=True, job_cbk=job_cbk)
                looked = time.ticks_ms()
                pause, fails = 1, 0
            force = time.ticks_diff(time.ticks_ms(), looked) >= look
            if force:
                looked = time.ticks_ms()
            flow.handle_fota_jobs(jobs, force=force, job_cbk=job_cbk)
            if not conn.connected():
                continue  # the update flow closed the session and could not reopen it
            if jobs.ended != reported:
                shadow.report(jobs)
                reported = jobs.ended
            step(app, conn)
            gc.collect()
            n += 1
            conn.publish("things/%s/telemetry" % cfg["thing"], json.dumps(
                {"n": n, "version": core.version(), "app_version": apps.version(),
                 "mem_free": gc.mem_free()}))
            for _ in range(every):  # wait, but wake at once when a job notification arrives
                wdt.feed()
                if jobs.wait(1000):
                    break
        except Exception as e:
            fails += 1
            print("app: error (%d): %r; retrying in %d s" % (fails, e, pause))
            conn.close()
            if core.testing() and time.ticks_diff(time.ticks_ms(), trial_end) > 0:
                core.reject("no connection to AWS IoT on the trial boot: %r" % e)
            for _ in range(pause):
                wdt.feed()
                time.sleep(1)
            pause = min(pause * 2, 60)
