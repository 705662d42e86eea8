"""Slow and stalling secondary MCUs: a sweep over how much of each upload chunk the MCU takes
and how late it answers, and over stalls (the MCU quiet for a while, or for good) at the first
chunk, in the middle and at the last chunk. The board runs with a watchdog of 2 s (4 s with the
emulator's grace) and waits 1 s for each answer, 3 times. Every job ends SUCCEEDED (the MCU runs
the new image) or FAILED with a reason naming the file and the target (the MCU runs the old
one), with no watchdog reset and the loop going on. `make test` takes a seeded sample, `make
reliability` all of them."""

from __future__ import annotations

import random

import pytest

from emulator.secondary import Secondary
from tests.device.test_file_targets import multi_job
from tests.device.test_secondary_jobs import APP, MCU_KEY, board, mcu_image, pem, running
from tests.reliability.plugin import full

ROW = "slow and stalling MCUs"
SAMPLE = 4
WATCHED = APP.replace("fota.handle_fota_jobs(jobs, force=True)",
                      "fota.watchdog = machine.WDT(timeout=2000)\nfota.handle_fota_jobs(jobs, force=True)")

SLOW = [[1, 0], [1, 50], [16, 0], [100, 20], [223, 0], [224, 0], [300, 0], [0, 200], [0, 900],
        [1, 0, 8], [1, 0, 9], [0, 1500, 3], [0, 2500, 2]]
STALLS = [[at, s] for at in ("first", 4096, "last") for s in (0.5, 1.5, 2.5, 3.5, -1)]
CASES = [("slow", f) for f in SLOW] + [("stall", f) for f in STALLS]
if not full():
    CASES = random.Random(5).sample(CASES, SAMPLE)


@pytest.mark.row(ROW)
@pytest.mark.parametrize("kind,fault", CASES, ids=[f"{k} {f}" for k, f in CASES])
def test_a_slow_or_stalling_mcu(rig, tmp_path, kind, fault):
    image = mcu_image()
    if kind == "stall":
        fault = [{"first": 100, "last": len(image) - 1}.get(fault[0], fault[0]), fault[1]]
    with Secondary(tmp_path / "mcu", key=pem(MCU_KEY), primary=mcu_image((1, 0, 0, 0))) as mcu:
        r = board(rig, mcu, WATCHED)
        before = r.running_slot_bytes()
        mcu.faults(**{kind: fault})
        job = multi_job(r, [(1, image, "mcu.bin")])
        result = r.run_mcu(max_boots=2)
        ex = r.execution(job)
        said = result.console + mcu.log()
        assert result.boot_count == 1 and "task_wdt" not in result.console, said  # no watchdog reset
        assert "app: done 1.0.0" in result.console, said  # the flow returned: the loop goes on
        assert r.running_slot_bytes() == before
        mcu.clear_faults()
        if ex.status == "SUCCEEDED":
            assert running(mcu)[0] == "1.1.0", said
        else:
            reason = ex.status_details.get("reason", "")
            assert ex.status == "FAILED" and reason.startswith("file 1: secondary"), (ex, said)
            assert running(mcu)[0] == "1.0.0", said
