"""The stand-in's broker process (tools/fotatools/cloud/broker.py): a broker a crashed run left
behind that does not stop on SIGTERM is killed (SIGKILL) once its time is up, so that a new
run does not find the old one still holding the folder."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.cloud.conftest import wait_until

from fotatools.cloud import broker as broker_mod
from fotatools.cloud.broker import Broker

# A stand-in for a stale mosquitto (its command line names the folder's config, as
# kill_stale checks) that ignores SIGTERM.
STALE = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[2], "w").close()
while True:
    time.sleep(1)
"""


def test_a_stale_broker_that_ignores_sigterm_is_killed(tmp_path: Path, monkeypatch):
    b = Broker(tmp_path / "broker", tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    b.folder.mkdir(parents=True)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", STALE, str(b.conf_path), str(ready)])
    reaper = threading.Thread(target=proc.wait)  # reaped as soon as it exits: no zombie left alive
    reaper.start()
    try:
        wait_until(ready.exists, what="the stale broker's SIGTERM handler")
        b.pid_path.write_text(f"{proc.pid}\n")
        real_sleep = time.sleep
        # the grace period's waits, shortened: the process never stops on its own anyway
        monkeypatch.setattr(broker_mod.time, "sleep", lambda s: real_sleep(min(s, 0.002)))
        b.kill_stale()
        monkeypatch.undo()
        reaper.join(5)
        assert proc.returncode == -9  # SIGKILL
        assert not b.pid_path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        reaper.join(5)
