"""`fota flash` onto a board that last ran stock MicroPython (emulator/usedboard.py): its own
partition table, its littlefs filesystem full of its files at its own offset, another app in
the slots. The commands `fota flash` plans run on the emulated board (tests/flashplan.py),
then the board boots the project's main.py and takes a firmware job."""

from __future__ import annotations

import subprocess

import pytest

from emulator.device import Device
from emulator.flash import Flash, merged_image
from emulator.flashfs import FlashFSError
from emulator.usedboard import FOTA_VFS, create_used_flash
from fotatools import flashing
from tests.device.rig import ROOT, firmware
from tests.device.test_main import wait_for
from tests.flashplan import CORRUPTED, apply, first_boot, is_erase

PROJECT = ["boot.py", "main.py", "config.json", "lib/fota/loop.py", "lib/umqtt/simple.py"]
OLD = ["wifi.json", "lib/sensor.py", "log.csv"]


def plan_for(r, image: bytes, **kw) -> flashing.FlashPlan:
    fw = r.folder / "firmware.bin"
    fw.write_bytes(image)
    return flashing.plan("/dev/ttyUSB0", fw, r.fs, ROOT, workdir=r.folder, **kw)


def comes_up(r) -> str:
    """Boot what the flash holds (no device folder: mpremote put the files there) with the
    project's main.py, and take a firmware job to the end. -> the console."""
    job = r.publish(firmware("1.0.1"))
    dev = Device(r.flash, heapsize="256k", echo=None)
    dev.start(timeout=210)
    try:
        wait_for(lambda: r.execution(job).status in ("SUCCEEDED", "FAILED"), timeout=180,
                 what="the job to end", dev=dev)
    finally:
        dev.stop()
    assert r.execution(job).status == "SUCCEEDED", dev.console
    assert r.version() == "1.0.1"
    return dev.console


@pytest.mark.parametrize("variant", ["generic", "ota"])
def test_full_image_on_a_used_board_comes_up_with_the_project_files(rig, variant):
    r = rig()
    used = create_used_flash(r.flash, variant)
    assert Flash(r.flash).read(FOTA_VFS, 4096) != b"\xff" * 4096  # old littlefs blocks there
    p = plan_for(r, merged_image(firmware("1.0.0")))
    assert [c[-3:] for c in p.commands if is_erase(c)] == [["erase-region", "0x310000", "0xf0000"]]
    console = apply(r.flash, p.commands)
    assert "Performing initial setup" in console and CORRUPTED not in console
    flash = Flash(r.flash)
    assert all(flash.has_file(f) for f in PROJECT)
    assert not any(flash.has_file(f) for f in OLD), used  # the old filesystem is gone
    assert flash.romfs_summary()[0]["image"] is None
    console = comes_up(r)
    assert f"app: firmware 1.0.0 application none thing {r.thing}" in console


@pytest.mark.parametrize("variant", ["generic", "ota"])
def test_full_image_without_the_erase_stops_at_a_corrupted_filesystem(rig, variant):
    # what `fota flash` did before: the board never makes its filesystem, mpremote cannot copy
    r = rig()
    create_used_flash(r.flash, variant)
    p = plan_for(r, merged_image(firmware("1.0.0")))
    with pytest.raises(FlashFSError, match="not a filesystem the board mounts"):
        apply(r.flash, p.commands, skip=is_erase)
    assert CORRUPTED in first_boot(r.flash)  # and so at every boot


def test_full_image_with_erase_all(rig):
    r = rig()
    create_used_flash(r.flash, "ota")
    p = plan_for(r, merged_image(firmware("1.0.0")), erase_all=True)
    assert [c[-1] for c in p.commands if is_erase(c)] == ["erase-flash"]
    apply(r.flash, p.commands)
    flash = Flash(r.flash)
    assert flash.app_desc("ota_1") is None  # nothing of the old board is left
    assert all(flash.has_file(f) for f in PROJECT)


def test_app_image_on_a_used_ota_board_comes_up_and_keeps_its_files(rig):
    # the stock OTA build's table stays: its filesystem at 0x310000 mounts, otadata is erased
    # so that ota_0 (the project's firmware) boots instead of the stock app in ota_1
    r = rig()
    create_used_flash(r.flash, "ota", reach=())
    assert Flash(r.flash).boot_slot() == "ota_1"
    p = plan_for(r, firmware("1.0.0"))
    console = apply(r.flash, p.commands)
    assert "old main.py: logged" in console  # the board's own files ran on the new firmware
    flash = Flash(r.flash)
    assert flash.boot_slot() == "ota_0" and flash.app_desc("ota_0")["version"] == "1.0.0"
    assert all(flash.has_file(f) for f in PROJECT + OLD)
    comes_up(r)


def test_app_image_without_the_otadata_erase_boots_the_old_app(rig):
    r = rig()
    create_used_flash(r.flash, "ota", reach=())
    p = plan_for(r, firmware("1.0.0"))
    apply(r.flash, p.commands, skip=is_erase)
    assert Flash(r.flash).boot_slot() == "ota_1"  # the stock app, not the project's firmware


def test_app_image_on_a_board_without_ota_slots_is_refused_before_writing(rig):
    r = rig()
    create_used_flash(r.flash, "generic", reach=())
    before = r.flash.read_bytes()
    p = plan_for(r, firmware("1.0.0"))
    with pytest.raises(subprocess.CalledProcessError) as e:
        apply(r.flash, p.commands)
    assert "the board's partition table has no OTA slots" in e.value.stderr
    assert "flash the full image instead" in e.value.stderr
    assert r.flash.read_bytes() == before
