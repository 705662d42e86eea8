"""lib/fota/flow.py, _run: a start that gets no answer is raised to the caller (which reconnects
and looks again), a refused one ends the call; a power cut while the slot of an image that
set_boot refused is made unbootable leaves a record that the next boot takes up as a download,
and the job ends with the image's own reason."""

from __future__ import annotations

import pytest

from emulator.flash import OTA_1_OFFSET, Flash, create_flash
from tests.device.rig import firmware
from tests.device.test_bounds import cases, mp

START = """
from fota import flow
from fota.jobs import JobsError
import fota, os
flow.version = lambda: "1.0.0"
plan = Fake()
plan.md5, plan.slot, plan.kind, plan.version = "0" * 32, 1, "firmware", "1.0.1"
install = Fake()
install.plan_for = lambda doc: plan
sys.modules["fota.install"] = install
fota.install = install
sent = []
class Job:
    def __init__(self):
        self.id = "j1"
        self.status = "QUEUED"
        self.status_details = {}
        self.document = {"operation": "fota", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 1000,
                         "bc_url": "https://h/fw.bin", "version": "1.0.1"}
    def describe(self):
        pass
    def update(self, status, details=None, **k):
        sent.append(status)
        raise JobsError(CODE, "no answer to j1/update in 10000 ms")
class Jobs:
    def changed(self):
        return True
    def list(self):
        return [], [Job()]
try:
    got = flow.handle_fota_jobs(Jobs(), force=True)
except JobsError as e:
    got = "raised " + e.code
out([got, sent, "fota.json" in os.listdir()])
"""


@pytest.mark.parametrize("code,got", cases([
    ("no-answer", "Timeout", "raised Timeout"),  # the update may have been made: look again
    ("refused", "InvalidStateTransition", False)]))  # cancelled or taken meanwhile: stop
def test_a_start_without_an_answer_is_raised_to_the_caller(code, got, tmp_path):
    # nothing is written before the start is answered: no record, no slot
    assert mp(START.replace("CODE", repr(code)), cwd=tmp_path) == [got, ["IN_PROGRESS"], False]


NEW = firmware("1.0.1", size=24_000)  # a few sectors


def test_a_power_cut_while_a_refused_image_is_made_unbootable(rig, tmp_path):
    # An image whose MD5 matches its document but whose own SHA-256 does not: set_boot
    # refuses it, and the flow erases its slot's first sector. Find that erase in a clean run
    # (the board's log of its flash operations), then cut the power during it on a fresh board.
    broken = bytearray(NEW)
    broken[5000] ^= 0xFF
    r = rig()
    r.publish(bytes(broken))
    log = tmp_path / "ops.log"
    r.run(max_boots=2, env={"ESP32_OPLOG": str(log)})
    ops = log.read_text().splitlines()
    header = "E %x %x" % (OTA_1_OFFSET, 4096)  # ota_1's first sector
    cut = 2 + len(ops) - ops[::-1].index(header)  # the last erase of it; after the bootloader's 2
    create_flash(r.flash, firmware("1.0.0"))
    job = r.publish(bytes(broken))
    result = r.run(max_boots=4, cut_at=cut)
    assert result.flash_stats.get("cuts") == 1, result.console
    assert result.exit_reason == "main-returned", result.console
    # the record said "download": the next boot took the job up again, and set_boot refused
    # the image again (not "rolled back: the trial boot did not happen")
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    assert ex.status_details["step"] == "boot", (ex, result.console)
    assert ex.status_details["reason"].startswith("image does not verify ("), ex.status_details
    f = Flash(r.flash)
    assert f.boot_slot() == "ota_0" and f.app_desc("ota_1") is None
    assert r.file("fota.json") is None
