"""The emulated board as an ESP32-S3 or ESP32-C3 (emulator/chips.py): where the bootloader is,
the partition table per flash size, the images it builds (esptool reads them), the bootloader
and set_boot refusing an image for another chip, and what MicroPython reports. The ESP32's
images and flash files are the same bytes as before the chips came."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator import bootloader, chips
from emulator import flashfmt as ff
from emulator.device import Device
from emulator.flash import MiB, Flash, create_flash, default_partitions, merged_image
from emulator.image import build_app_image


def image(version: str, chip: str | None, **kw) -> bytes:
    return build_app_image(version, chip=chip, built=None, **kw)


def test_esp32_bytes_are_as_before(tmp_path):
    assert image("1.0.0", "esp32", size=50_000) == image("1.0.0", None, size=50_000)
    app = image("1.0.0", None)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    create_flash(a, app, romfs=True)
    create_flash(b, app, romfs=True, chip="esp32")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes()[0x1000] == ff.IMAGE_MAGIC and a.read_bytes()[0] == 0xFF
    assert merged_image(app) == merged_image(app, chip="esp32")


@pytest.mark.parametrize("chip, mb, slot, ota_1, romfs", [
    ("esp32s3", 4, 0x180000, 0x190000, 0x310000),
    ("esp32s3", 8, 0x270000, 0x280000, 0x4F0000),
    ("esp32s3", 16, 0x270000, 0x280000, 0x4F0000),
    ("esp32c3", 4, 0x180000, 0x190000, 0x310000),
])
def test_layout_per_chip_and_flash_size(tmp_path, chip, mb, slot, ota_1, romfs):
    flash = tmp_path / "f.bin"
    create_flash(flash, image("1.0.0", chip), mb * MiB, romfs=True, chip=chip)
    data = flash.read_bytes()
    head = ff.parse_image_header(data[:ff.IMAGE_HEADER_SIZE])  # the bootloader at 0x0
    assert head["chip_id"] == chips.get(chip).chip_id and data[0x1000:0x1004] == b"\xff" * 4
    f = Flash(flash)
    assert f.chip() == chip
    assert (f.partition("ota_1").offset, f.partition("ota_1").size) == (ota_1, slot)
    assert f.partition("romfs").offset == romfs
    assert f.boot_slot() == "ota_0"


def test_flash_sizes_a_chip_does_not_come_with_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ESP32-C3 has 4 MB of flash, not 8 MB"):
        create_flash(tmp_path / "f.bin", image("1.0.0", "esp32c3"), 8 * MiB, chip="esp32c3")
    with pytest.raises(ValueError, match="ESP32-S3 has 4 MB or 8 MB or 16 MB of flash, not 2 MB"):
        create_flash(tmp_path / "f.bin", image("1.0.0", "esp32s3"), 2 * MiB, chip="esp32s3")
    with pytest.raises(ValueError, match="unknown chip 'esp32c6'"):
        chips.get("esp32c6")


@pytest.mark.parametrize("chip", ["esp32s3", "esp32c3"])
def test_esptool_reads_the_chips_images(tmp_path, chip):
    path = tmp_path / "a.bin"
    path.write_bytes(image("2.0.1", chip, size=60_000))
    out = subprocess.run([sys.executable, "-m", "esptool", "--chip", chip, "image-info", str(path)],
                         capture_output=True, text=True, check=True).stdout
    spec = chips.get(chip)
    assert f"Chip ID: {spec.chip_id} ({spec.name})" in out
    assert f"Minimal chip revision: {spec.revision(spec.min_rev_full)}" in out
    assert "Checksum:" in out and out.count("(valid)") == 2 and "App version: 2.0.1" in out
    assert "IROM" in out and "DROM" in out  # its segments in this chip's memory map


def test_bootloader_refuses_an_image_for_another_chip_and_falls_back(tmp_path):
    flash = tmp_path / "f.bin"
    # a C3 board whose ota_0 holds an S3 image and ota_1 its own
    create_flash(flash, image("9.9.9", "esp32s3"), ota_1=image("1.0.0", "esp32c3"), chip="esp32c3")
    lines: list[str] = []
    booted = bootloader.boot(flash, log=lines.append, chip="esp32c3")
    assert booted.label == "ota_1" and booted.app_desc["version"] == "1.0.0"
    assert "E boot: ota_0 (0x10000): mismatch chip ID, expected 5, found 9" in lines
    # the same flash on an S3: only ota_0 is its own
    assert bootloader.boot(flash, log=None, chip="esp32s3", dry_run=True).label == "ota_0"


def test_rom_finds_no_bootloader_on_a_flash_laid_out_for_the_esp32(tmp_path):
    flash = tmp_path / "f.bin"
    create_flash(flash, image("1.0.0", "esp32s3"))  # an ESP32's layout: bootloader at 0x1000
    lines: list[str] = []
    with pytest.raises(bootloader.BootError, match="no ESP32-S3 bootloader at 0x0"):
        bootloader.boot(flash, log=lines.append, chip="esp32s3")
    assert lines and lines[0].startswith("E rom: invalid header: 0xffffffff at 0x0")


def test_c3_image_needs_revision_v0_3(tmp_path):
    # ESP32-C3 images need v0.3 (Kconfig ESP32C3_REV_MIN_3); the emulated C3 is v0.4
    c3 = chips.get("esp32c3")
    data = image("1.0.0", "esp32c3")
    assert ff.parse_image_header(data)["min_chip_rev_full"] == 3
    ff.verify_image_bytes(data, chip_id=5, chip_rev_full=3, memmap=chips.memmap(c3))
    with pytest.raises(ff.ImageError, match=r"requires chip rev >= v0\.3"):
        ff.verify_image_bytes(data, chip_id=5, chip_rev_full=2, memmap=chips.memmap(c3))


def test_set_boot_on_a_c3_refuses_an_s3_image_and_micropython_names_the_chip(tmp_path):
    flash = tmp_path / "f.bin"
    create_flash(flash, image("1.0.0", "esp32c3"), ota_1=image("1.0.1", "esp32s3"),
                 chip="esp32c3")
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text(
        "import esp32, sys\n"
        "print('machine:', sys.implementation._machine, '|', sys.implementation._build)\n"
        "p = esp32.Partition('ota_1')\n"
        "try:\n    p.set_boot()\n    print('set_boot: ok')\n"
        "except OSError as e:\n    print('set_boot:', e)\n")
    r = Device(flash, fs, echo=None, chip="esp32c3").run(timeout=60)
    assert r.exit_reason == "main-returned", r.console
    assert "machine: ESP32C3 module with ESP32-C3 | ESP32_GENERIC_C3" in r.console
    assert "set_boot: (-5379, 'ESP_ERR_OTA_VALIDATE_FAILED')" in r.console
    assert "ESP-ROM:esp32c3-api1-20210207" in r.console
    assert "I (30) boot: chip revision: v0.4" in r.console


@pytest.mark.parametrize("chip, machine, arch", [
    ("esp32", "Generic ESP32 module with ESP32", "xtensa"),
    ("esp32s3", "Generic ESP32S3 module with ESP32-S3", "xtensa"),
    ("esp32c3", "ESP32C3 module with ESP32-C3", "riscv"),
])
def test_uname_and_platform_name_the_chip(tmp_path, chip, machine, arch):
    flash = tmp_path / "f.bin"
    mb = chips.get(chip).flash_mb[0]
    create_flash(flash, image("1.0.0", chip, idf_ver="v5.5.1"), mb * MiB, chip=chip)
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text(
        "import os, platform, sys\nu = os.uname()\n"
        "print('uname:', u.sysname, u.machine == sys.implementation._machine, u.machine)\n"
        "print('platform:', platform.platform())\nprint('listdir:', 'main.py' in os.listdir())\n")
    r = Device(flash, fs, echo=None, chip=chip).run(timeout=60)
    assert f"uname: esp32 True {machine}\n" in r.console, r.console
    assert f"-{arch}-IDFv5.5.1-with-newlib4.3.0\n" in r.console and "platform: MicroPython-1." in r.console
    assert "listdir: True" in r.console
