"""A flash that programs only part of a sector and says nothing (the emulator's ESP32_SHORT_AT:
a write over that address stores the bytes before it only). The slot writer reads every sector
back before the next one: the job ends FAILED naming the sector, the new slot's header is
erased, the running firmware is untouched, and nothing boots a half-written image."""

from __future__ import annotations

import pytest

from emulator.flash import Flash
from emulator.norflash import NorFlash
from tests.device.rig import firmware
from tests.device.test_bad_jobs import check_untouched

NEW = firmware("1.0.1", size=200_000)
OTA_1 = 0x190000
SECTOR = 4096
LAST = len(NEW) // SECTOR  # the last, short sector


def first_programmed(start: int) -> int:
    """The first byte at or after `start` that the image does not leave erased (0xFF)."""
    return next(i for i in range(start, len(NEW)) if NEW[i] != 0xFF)


@pytest.mark.parametrize("sector", [0, 5, LAST])
def test_a_sector_programmed_short_fails_the_job(rig, sector):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    off = first_programmed(sector * SECTOR + 100)
    job = r.publish(NEW)
    result = r.run(max_boots=2, env={"ESP32_SHORT_AT": hex(OTA_1 + off)})
    assert result.exit_reason == "main-returned" and result.boot_count == 1, result.console
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    step = "verify" if sector == LAST else "download"  # the last sector is written by finish()
    assert ex.status_details == {"step": step, "reason": "flash read-back differs in sector %d" % sector}
    check_untouched(r, before, otadata)


def test_the_emulated_flash_programs_short_at_that_address(tmp_path):
    path = tmp_path / "flash.bin"
    path.write_bytes(b"\xff" * 3 * SECTOR)
    f = NorFlash(str(path), short_at=SECTOR + 10)
    f.write(SECTOR + 8, b"\x11" * 8)  # over it: the 2 bytes before it only
    f.write(SECTOR, b"\x00" * 8)  # ends before it: whole
    f.write(SECTOR + 16, b"\x00" * 16)  # after it: whole
    f.write(0, b"\x00" * 32)  # elsewhere: whole
    f.close()
    data = path.read_bytes()
    assert data[:32] == b"\x00" * 32
    assert data[SECTOR:SECTOR + 10] == b"\x00" * 8 + b"\x11" * 2
    assert data[SECTOR + 10:SECTOR + 16] == b"\xff" * 6
    assert data[SECTOR + 16:SECTOR + 32] == b"\x00" * 16
