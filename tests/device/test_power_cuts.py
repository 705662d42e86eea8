"""A power cut at every flash operation of an update: the board always boots a valid firmware,
and the job always ends, SUCCEEDED exactly when the new firmware runs.

The sweep first counts the flash operations (erases and writes, bootloader included) of a clean
update, then repeats the update once per operation, cutting the power in the middle of it."""

import pytest

from emulator.flash import Flash
from tests.device.rig import firmware

NEW = firmware("1.0.1", size=24_000)  # a few sectors: every kind of operation, quickly
# A clean update of NEW: otadata at the first boot (2), 6 sectors erased and written (12),
# set_boot (2), NEW -> PENDING_VERIFY at the trial boot (2), confirm (2). A cut that sends the
# flow another way (a rollback, a download started again) may add a few: sweep past it.
CLEAN_OPS = 20
MAX_OPS = CLEAN_OPS + 4


def ops(result):
    return result.erases + result.writes


def test_clean_update_fits_the_sweep(rig):
    r = rig()
    job = r.publish(NEW)
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert ops(result) == CLEAN_OPS, result.console


@pytest.mark.parametrize("cut", range(1, MAX_OPS + 1))
def test_power_cut(rig, cut):
    r = rig()
    job = r.publish(NEW)
    with_cut = r.run(max_boots=8, cut_at=cut, timeout=120)
    if not with_cut.flash_stats.get("cuts"):
        assert cut > CLEAN_OPS, with_cut.console
        pytest.skip(f"this update took fewer than {cut} flash operations")
    assert with_cut.exit_reason == "main-returned", with_cut.console
    f = Flash(r.flash)
    slot = f.boot_slot()
    f.verify_slot(slot)  # raises if the image the bootloader chose does not verify
    version = f.app_desc(slot)["version"]
    ex = r.execution(job)
    if ex.status == "IN_PROGRESS":  # the cut came after the last report: one more boot finishes it
        again = r.run(max_boots=4)
        ex = r.execution(job)
        assert again.exit_reason == "main-returned", again.console
        version = Flash(r.flash).app_desc(Flash(r.flash).boot_slot())["version"]
    assert ex.status in ("SUCCEEDED", "FAILED"), (ex, with_cut.console)
    assert (ex.status == "SUCCEEDED") == (version == "1.0.1"), (ex, version, with_cut.console)


def test_download_resumes_after_a_power_cut(rig):
    r = rig()
    image = firmware("1.0.1", size=300_000)
    job = r.publish(image)
    # Operations 1-2 are the first boot's otadata; each sector then takes an erase and a write:
    # cut in sector 20, after the record said 64 KB (16 sectors) were in flash.
    result = r.run(max_boots=5, cut_at=2 + 2 * 20 + 1)
    assert result.flash_stats.get("cuts") == 1
    assert result.exit_reason == "main-returned", result.console
    assert "fota: [download] resuming at byte 65536" in result.console
    assert r.execution(job).status == "SUCCEEDED"
    assert r.version() == "1.0.1"
