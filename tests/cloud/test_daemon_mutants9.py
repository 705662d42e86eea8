"""`fota cloud stop` (tools/fotatools/cloud/daemon.py stop): the stand-in gets SIGTERM and time
to shut down cleanly (its broker stopped, its database closed); only one that is still running
when the time is up is killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from fotatools.cloud import daemon

# A process taken for the stand-in (its command line names the daemon's module) that, on
# SIGTERM, takes a moment to finish its work and then exits.
FAKE = """
import signal, sys, time
from pathlib import Path
done = Path(sys.argv[1])
def term(signum, frame):
    time.sleep(0.3)
    done.write_text("clean")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
done.with_name("ready").write_text("")
while True:
    time.sleep(1)
"""


def test_stop_waits_for_the_stand_in_to_finish_shutting_down(tmp_path: Path):
    paths = daemon.Paths(tmp_path)
    paths.root.mkdir(parents=True)
    done = tmp_path / "done"
    proc = subprocess.Popen([sys.executable, "-c", FAKE, str(done), daemon.MODULE])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "ready").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        paths.pid.write_text(f"{proc.pid}\n")
        assert daemon.stop(tmp_path, timeout=10) is True
        assert done.read_text() == "clean"  # not killed halfway
        assert proc.wait(timeout=5) == 0
        assert not paths.pid.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
