"""The stand-in's broker process (tools/fotatools/cloud/broker.py): a broker a crashed run left
behind that does not stop on SIGTERM is killed (SIGKILL) once its time is up, so that a new
run does not find the old one still holding the folder."""

from __future__ import annotations

import time
from pathlib import Path

from tests.cloud.test_broker_mutants2 import stale_broker

from fotatools.cloud import broker as broker_mod

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
    with stale_broker(tmp_path, STALE) as (b, proc):
        real_sleep = time.sleep
        # the grace period's waits, shortened: the process never stops on its own anyway
        monkeypatch.setattr(broker_mod.time, "sleep", lambda s: real_sleep(min(s, 0.002)))
        b.kill_stale()
        monkeypatch.undo()
        proc.wait(5)
        assert proc.returncode == -9  # SIGKILL
        assert not b.pid_path.exists()
