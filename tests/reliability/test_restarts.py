"""The broker and the jobs service restart at a random moment of a job (seeded): the device
rides it out and the job ends truthfully: SUCCEEDED exactly when the new firmware runs,
otherwise FAILED with a reason, never stuck."""

from __future__ import annotations

import json
import random
import time

import pytest

from fotatools.backend import TERMINAL_STATES
from fotatools.cloud import daemon
from fotatools.cloud.client import LocalBackend
from tests.device.rig import Rig, firmware
from tests.reliability.board import MAIN, Running
from tests.reliability.plugin import full

ROW = "broker and jobs service restarts during a job"
NEW = firmware("1.0.1", size=300_000)
SEEDS = range(10) if full() else range(1)


@pytest.mark.row(ROW)
@pytest.mark.parametrize("seed", SEEDS)
def test_restart_during_a_job(tmp_path, seed):
    rnd = random.Random(seed)
    home = tmp_path / "home"
    daemon.start(home, owned=True)
    try:
        r = Rig(LocalBackend(home), home, tmp_path, app=MAIN)
        cfg = json.loads((r.fs / "config.json").read_text())
        cfg["telemetry_s"] = 1
        (r.fs / "config.json").write_text(json.dumps(cfg))
        with Running(r, tmp_path / "ops.log") as board:
            assert board.until(lambda: "app: firmware 1.0.0" in board.dev.console, 60), board.dev.console
            job = r.publish(NEW)
            time.sleep(rnd.uniform(0.0, 4.0))  # somewhere in the download, trial boot or report
            daemon.stop(home)
            time.sleep(rnd.uniform(0.2, 2.0))
            daemon.start(home, owned=True)
            r.cloud = LocalBackend(home)
            ended = board.until(lambda: r.execution(job).status in TERMINAL_STATES, 150)
            console = board.dev.console
            board.stop()
        ex = r.execution(job)
        assert ended, (ex, console[-3000:])
        version = r.version()
        assert ex.status in ("SUCCEEDED", "FAILED"), ex
        assert (ex.status == "SUCCEEDED") == (version == "1.0.1"), (ex, version, console[-3000:])
        if ex.status == "FAILED":
            assert ex.status_details.get("reason"), ex
        assert "Traceback" not in console, console[-3000:]
    finally:
        daemon.stop(home)
