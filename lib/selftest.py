# The new firmware's self-test, run once on its trial boot before it confirms itself.
# Freeze your own selftest.py into the firmware to check what your application needs
# (sensors, peripherals); a frozen module takes precedence over this one.
import gc
import os

MIN_FREE = 30000  # bytes of heap the application needs after start-up


def run(jobs):
    # -> (ok, reason). jobs: the connected Jobs client (the cloud is reachable).
    gc.collect()
    if gc.mem_free() < MIN_FREE:
        return False, "only %d bytes of heap free" % gc.mem_free()
    try:
        with open("selftest.tmp", "w") as f:
            f.write("ok")
        os.remove("selftest.tmp")
    except OSError as e:
        return False, "filesystem not writable (%s)" % e
    try:
        jobs.list()
    except Exception as e:
        return False, "jobs API unreachable (%s)" % e
    return True, "ok"
