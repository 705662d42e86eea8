"""The stand-in's broker process (tools/fotatools/cloud/broker.py): a broker a crashed run left
behind is asked to stop (SIGTERM) and given time to, before it is killed."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cloud.conftest import wait_until

from fotatools.cloud.broker import Broker

# A stand-in for a stale mosquitto (its command line names the folder's config, as
# kill_stale checks): on SIGTERM it takes a moment to finish, then exits 0.
STALE = """
import signal, sys, time
def term(*_):
    time.sleep(0.3)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
open(sys.argv[2], "w").close()
while True:
    time.sleep(1)
"""


@contextmanager
def stale_broker(tmp_path: Path, code: str) -> Iterator[tuple[Broker, subprocess.Popen]]:
    """A Broker whose pid file names a running stand-in for a stale mosquitto (`code`, run with
    the broker's config path and a file it makes once its signal handling is set): reaped as
    soon as it exits, killed after the test if it is still there (also for
    test_broker_mutants6.py)."""
    b = Broker(tmp_path / "broker", tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    b.folder.mkdir(parents=True)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", code, str(b.conf_path), str(ready)])
    reaper = threading.Thread(target=proc.wait)  # reaped as soon as it exits: no zombie left alive
    reaper.start()
    try:
        wait_until(ready.exists, what="the stale broker's SIGTERM handler")
        b.pid_path.write_text(f"{proc.pid}\n")
        yield b, proc
        reaper.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        reaper.join(10)


def test_a_stale_broker_gets_time_to_stop_on_sigterm(tmp_path: Path):
    with stale_broker(tmp_path, STALE) as (b, proc):
        b.kill_stale()
        proc.wait(10)
        assert proc.returncode == 0  # it stopped on its own, not by SIGKILL (-9)
        assert not b.pid_path.exists()
