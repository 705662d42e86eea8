# What the device runs: the library's loop (fota/loop.py). It connects to AWS IoT, finishes or
# starts firmware and application updates, runs the application of the slot boot.py chose,
# publishes telemetry, and never ends. What your application takes, it gives as arguments of
# fota.run (job_cbk, targets, selftest, on_progress: see lib/fota/__init__.py), e.g.
#
#     from fota.target import SmpTarget
#     fota.run(job_cbk=my_jobs, selftest=my_checks,
#              targets={1: SmpTarget(machine.UART(1, 115200, tx=17, rx=16, rxbuf=1024))})
import fota

try:
    import checks  # a firmware's own self-test, if its build froze one: checks.run(jobs) -> (ok, why)
except ImportError:
    checks = None

fota.run(selftest=checks and checks.run)
