"""A secondary MCU that misbehaves on the wire (the emulator's faults: late, twice, stale,
reset_late), and the board's answer to each: the job SUCCEEDED with the MCU running the new
image, confirmed; or FAILED naming the file, the MCU running the old image. Nothing of the
ESP32 is touched either way, and the flow returns (the loop goes on). The board waits 1 s for
each answer (timeout_ms), three times, and 1 s after a reset request (reset_ms)."""

from __future__ import annotations

import pytest

from emulator.secondary import Secondary
from tests.device.test_file_targets import multi_job
from tests.device.test_secondary_jobs import APP, MCU_KEY, board, mcu_image, pem, running

RESET, UPLOAD = [0, 5], [1, 1]

# fault -> the faults set on the MCU before the job
GOES_ON = {
    "the first answer late": {"late": [1500, 1]},
    "an upload answer late": {"late": [1500, 1], "only": UPLOAD},
    "every answer twice": {"twice": -1},
    "a stale sequence number": {"stale": 1},
    "two upload answers with stale numbers": {"stale": 2, "only": UPLOAD},
    "a stale number on the reset's answer": {"stale": 1, "only": RESET},
    "the reset's answer late": {"late": [1500, 1], "only": RESET},
    "the old image right after the reset request": {"reset_late": 2.5},
    "the old image, then late answers after the reset request": {"reset_late": 1.5, "late": [1500, 1],
                                                                 "only": RESET},
}


def job_with(rig, tmp_path, faults):
    image = mcu_image()
    mcu = Secondary(tmp_path / "mcu", key=pem(MCU_KEY), primary=mcu_image((1, 0, 0, 0))).start()
    r = board(rig, mcu, APP)
    before = r.running_slot_bytes()
    mcu.faults(**faults)
    job = multi_job(r, [(1, image, "mcu.bin")])
    result = r.run_mcu(max_boots=2)
    said = result.console + mcu.log()
    assert result.boot_count == 1, said  # no ESP32 reset: a job of the secondary alone
    assert "app: done 1.0.0" in result.console, said  # the flow returned
    assert r.running_slot_bytes() == before
    mcu.image_size = len(image)  # its signature's length varies by a byte or two
    return mcu, r.execution(job), said


@pytest.mark.parametrize("fault", list(GOES_ON))
def test_the_update_goes_on_past_a_misbehaving_mcu(rig, tmp_path, fault):
    mcu, ex, said = job_with(rig, tmp_path, GOES_ON[fault])
    try:
        assert ex.status == "SUCCEEDED", (ex, said)
        mcu.clear_faults()
        mcu.power_cycle()  # confirmed: the new image stays over a reset of the MCU
        assert running(mcu) == ("1.1.0", {"magic": True, "copy_done": True, "image_ok": True}), said
        assert mcu.status()["boots"] == 3, said  # power-on, the test boot, the power cycle: one reset only
    finally:
        mcu.close()


FAILS = {
    "every answer stale": ({"stale": -1}, "file 1: secondary: no answer to image state in 1000 ms"),
    "every answer late": ({"late": [1500, -1]}, "file 1: secondary: no answer to image state in 1000 ms"),
    "three upload answers with stale numbers": ({"stale": 3, "only": UPLOAD},  # each try's
                                                "file 1: secondary at byte 0 of {size}: no answer to image upload in 1000 ms"),
    "the reset never done": ({"reset_late": 60}, "file 1: secondary does not reset: image 1.1.0 is "
                                                 "still pending after 5000 ms"),
}


@pytest.mark.parametrize("fault", list(FAILS))
def test_a_misbehaving_mcu_fails_the_job_and_keeps_its_image(rig, tmp_path, fault):
    faults, reason = FAILS[fault]
    mcu, ex, said = job_with(rig, tmp_path, faults)
    try:
        assert ex.status == "FAILED", (ex, said)
        assert ex.status_details["reason"] == reason.format(size=mcu.image_size), (ex, said)
        if fault != "the reset never done":
            assert running(mcu)[0] == "1.0.0", said
    finally:
        mcu.close()
