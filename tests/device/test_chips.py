"""The FOTA flow on each chip the emulated board can be (emulator/chips.py): the ESP32-S3 with
8 MB of flash (MicroPython's 8MiBplus OTA table, its bootloader at 0x0) and the ESP32-C3 with
4 MB; the ESP32 runs every other test. An image for another chip is refused before any flash
operation: the C3 board is sent an S3 image."""

from __future__ import annotations

import json

import pytest

from emulator.flash import Flash, create_flash
from tests.device import appimage
from tests.device.rig import firmware
from tests.device.test_apps import GOOD, MAIN, publish_app, record, seeded
from tests.device.test_bad_jobs import failed_with

CHIPS = [pytest.param("esp32s3", 8, id="esp32s3-8MB"), pytest.param("esp32c3", 4, id="esp32c3")]
NAMES = {"esp32s3": "ESP32-S3", "esp32c3": "ESP32-C3"}


@pytest.mark.parametrize("chip, mb", CHIPS)
def test_firmware_update_on_each_chip(rig, chip, mb):
    r = rig(chip=chip, flash_mb=mb)
    new = firmware("1.0.1", size=1_500_000, chip=chip)
    job = r.publish(new)
    result = r.run()
    console = result.console
    assert result.exit_reason == "main-returned", console
    assert r.boot_slot() == "ota_1" and r.version() == "1.0.1"
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", (ex, console)
    assert ex.status_details["from_version"] == "1.0.0"
    assert "fota: [confirm] firmware 1.0.1 confirmed" in console
    # the ROM's and the runner's banners name the chip; ota_1 is where this chip's table has it
    assert f"ESP-ROM:{chip}" in console and f"[emu] {NAMES[chip]} (revision" in console
    ota_1 = Flash(r.flash).partition("ota_1")
    assert (ota_1.offset, ota_1.size) == ((0x280000, 0x270000) if mb == 8 else (0x190000, 0x180000))


@pytest.mark.parametrize("chip, mb", CHIPS)
def test_application_update_on_each_chip(rig, chip, mb):
    r = seeded(lambda **kw: rig(chip=chip, flash_mb=mb, **kw))
    from tests.device.test_main import run_until

    job = publish_app(r, appimage.app("2.1.0", GOOD))
    result, console = run_until(r, job, "SUCCEEDED", seen=lambda c: "app: step 2.1.0" in c)
    assert record(r)["slot"] == 1 and record(r)["versions"] == ["2.0.0", "2.1.0"]
    assert r.version() == "1.0.0" and r.boot_slot() == "ota_0"


def test_s3_image_is_refused_by_a_c3_board_before_any_flash_operation(rig):
    r = rig(chip="esp32c3")
    # ota_1 holds an older image of the C3's: if a byte of the S3 image reached the slot (an
    # erase, a write), it would not be there as it was
    old = firmware("0.9.0", chip="esp32c3")
    create_flash(r.flash, firmware("1.0.0", chip="esp32c3"), ota_1=old, chip="esp32c3")
    slot_before = Flash(r.flash).slot_bytes("ota_1")
    s3 = firmware("1.0.1", size=200_000, chip="esp32s3")
    job = r.publish(s3)
    result = failed_with(r, job, "verify: image is for chip id 9, not this chip")
    assert Flash(r.flash).slot_bytes("ota_1") == slot_before, result.console
    assert r.boot_slot() == "ota_0" and r.version() == "1.0.0"


def test_c3_board_reports_its_chip_as_micropython_does(rig):
    r = rig(chip="esp32c3", app="import sys\nprint('machine:', sys.implementation._machine, "
            "sys.implementation._build, sys.implementation._mpy >> 10)\n")
    result = r.run(max_boots=1)
    assert "machine: ESP32C3 module with ESP32-C3 ESP32_GENERIC_C3 11" in result.console, \
        result.console


@pytest.mark.parametrize("chip, chip_id", [("esp32", 0), ("esp32c3", 5)])
def test_the_board_knows_its_chip_from_the_running_image(rig, chip, chip_id):
    # what its shadow report carries ("chip"), and what check_head compares an image with
    r = rig(chip=chip, app="from fota import otaslot, shadow\nprint('chip id', otaslot.chip_id())\n")
    result = r.run(max_boots=1)
    assert f"chip id {chip_id}\n" in result.console, result.console


def test_c3_refuses_an_application_with_xtensa_native_code(rig):
    # an application whose .mpy carries viper/native code for the ESP32 (xtensawin) runs on
    # the ESP32 and ESP32-S3, not on the ESP32-C3 (rv32imc: `fota build --app --arch rv32imc`)
    from tests.device.test_apps import CONFIRMED, mpy
    from tests.device.rig import ONCE

    r = seeded(lambda **kw: rig(chip="esp32c3", **{**kw, "app": ONCE}))
    before = (r.fs / "app0" / "app.py").read_bytes()
    job = publish_app(r, appimage.raw([("app.mpy", mpy(6, 10 << 2 | 3))]))
    result = r.run(max_boots=3)
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    assert "app.mpy: native code for xtensawin.3, this firmware runs rv32imc.3" in \
        ex.status_details["reason"], ex.status_details
    assert r.file("app0/app.py") == before and record(r) == CONFIRMED
