"""A board that ran stock MicroPython (emulator/usedboard.py), and esptool and mpremote command
lines applied to a flash file (emulator/serialtools.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emulator import flashfmt as ff
from emulator import serialtools
from emulator.device import Device
from emulator.flash import Flash, create_flash, merged_image
from emulator.flashfs import FlashFS, FlashFSError
from emulator.image import build_app_image
from emulator.serialtools import ToolError
from emulator.usedboard import FOTA_ROMFS, FOTA_VFS, create_used_flash
from tests.emulator.emuhelpers import REPO
from tests.flashplan import CORRUPTED, first_boot

BLOCK = 4096


# ---------------------------------------------------------------- the used board
@pytest.mark.parametrize("variant, vfs, boots", [("generic", (0x200000, 0x200000), "factory"),
                                                 ("ota", (0x310000, 0xF0000), "ota_1")])
def test_used_board_is_stock_micropython_with_old_files_where_the_project_puts_its_own(
        tmp_path, variant, vfs, boots):
    flash = tmp_path / "used.bin"
    info = create_used_flash(flash, variant)
    f = Flash(flash)
    assert info["vfs"] == vfs and f.filesystem_summary()["state"] == "littlefs"
    assert f.boot_slot() == boots and f.app_desc(boots)["version"] == "v1.26.1"
    assert {"boot.py", "main.py", "lib/sensor.py", "wifi.json", "log.csv"} <= set(f.files())
    for addr in (FOTA_ROMFS, FOTA_VFS):  # old littlefs blocks where the project's table points
        assert f.read(addr, BLOCK) != b"\xff" * BLOCK
    labels = [p.label for p in f.partitions(runtime=False)]
    assert labels == (["nvs", "phy_init", "factory"] if variant == "generic" else
                      ["nvs", "otadata", "phy_init", "ota_0", "ota_1"])
    # it boots as it did: the stock firmware runs the old main.py from the old filesystem
    result = Device(flash, echo=None).run(timeout=60)
    assert result.exit_reason == "main-returned" and "old main.py: logged" in result.console
    assert Flash(flash).read_file("log.csv").endswith(b"boot,1\n")


def test_used_board_without_a_log(tmp_path):
    info = create_used_flash(tmp_path / "used.bin", "ota", reach=(), files={"a.txt": "x"})
    assert info["log_bytes"] == 0
    assert info["files"] == ["a.txt", "boot.py", "log.csv"]  # boot.py: its first boot's
    with pytest.raises(ValueError, match="outside the old filesystem"):
        create_used_flash(tmp_path / "u2.bin", "ota", reach=(0x300000,))


def test_project_image_over_a_used_board_without_an_erase_never_makes_its_filesystem(tmp_path):
    # the old `fota flash`: write-flash at 0x1000 alone
    flash = tmp_path / "used.bin"
    create_used_flash(flash, "generic")
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(merged_image(build_app_image("1.0.0")))
    serialtools.run(flash, ["esptool", "--chip", "esp32", "write-flash", "0x1000", str(fw)])
    assert Flash(flash).boot_slot() == "ota_0"
    console = first_boot(flash)
    assert CORRUPTED in console and "Performing initial setup" not in console
    with pytest.raises(FlashFSError, match="not a filesystem the board mounts"):
        serialtools.run(flash, ["mpremote", "connect", "/dev/ttyUSB0", "cp", str(fw), ":"])
    # erasing the new filesystem's first block is enough for the first boot to make it
    serialtools.run(flash, ["esptool", "erase-region", hex(FOTA_VFS), "0x1000"])
    assert "Performing initial setup" in first_boot(flash)
    assert Flash(flash).files() == ["boot.py"]


# ---------------------------------------------------------------- esptool
@pytest.fixture
def flash(tmp_path):
    path = tmp_path / "flash.bin"
    create_flash(path, build_app_image("1.0.0", size=100_000))
    return path


def test_write_flash_erases_the_sectors_it_covers_and_pads_to_4_bytes(tmp_path, flash):
    data = bytearray(flash.read_bytes())
    data[0x200000:0x204000] = b"\x00" * 0x4000  # programmed bits: only an erase sets them
    flash.write_bytes(bytes(data))
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x12\x34\x56")
    serialtools.run(flash, ["esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud",
                            "460800", "--before", "default-reset", "--after", "no-reset",
                            "write-flash", "0x201010", str(blob)])
    after = flash.read_bytes()
    assert after[0x201010:0x201014] == b"\x12\x34\x56\xff"
    assert after[0x201000:0x201010] == b"\xff" * 16  # the sector's start: erased
    assert after[0x201014:0x202000] == b"\xff" * (0x1000 - 0x14)
    assert after[0x200000:0x201000] == after[0x202000:0x203000] == b"\x00" * 0x1000


def test_write_flash_several_files_and_erase_all(tmp_path, flash):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"A" * 10)
    b.write_bytes(b"B" * 5000)
    serialtools.run(flash, [sys.executable, "-m", "esptool", "write-flash", "-e", "0x1000",
                            str(a), "0x300000", str(b)])
    data = flash.read_bytes()
    assert data[0x1000:0x100C] == b"A" * 10 + b"\xff\xff"
    assert data[0x300000:0x301388] == b"B" * 5000
    assert data.count(b"\xff") == len(data) - 5010  # the rest: erased, table and apps too


def test_erase_region_erase_flash_and_read_flash(tmp_path, flash):
    serialtools.run(flash, ["esptool", "erase-region", "0x10000", "0x2000"])
    data = flash.read_bytes()
    assert data[0x10000:0x12000] == b"\xff" * 0x2000 and data[0x12000:0x12010] != b"\xff" * 16
    out = tmp_path / "table.bin"
    serialtools.run(flash, ["esptool", "read-flash", "0x8000", "0xc00", str(out)])
    assert out.read_bytes() == data[0x8000:0x8C00]
    serialtools.run(flash, ["esptool", "erase_flash"])  # esptool v4's spelling too
    assert flash.read_bytes() == b"\xff" * len(data)


@pytest.mark.parametrize("args, message", [
    (["erase-region", "0x10001", "0x1000"], "Offset to erase from must be a multiple of 4096."),
    (["erase-region", "0x10000", "0x1001"], "Size of data to erase must be a multiple of 4096."),
    (["erase-region", "0x3ff000", "0x2000"], "beyond the end"),
    (["write-flash", "0x3fffff", "FILE"], "will not fit in 4194304 bytes of flash"),
    (["write-flash", "--flash-size", "8MB", "0x1000", "FILE"], "not modelled"),
    (["write-flash", "0x1000"], "write-flash ADDRESS FILENAME"),
    (["read-flash", "0x3ff000", "0x2000", "out.bin"], "beyond the end"),
    (["merge-bin", "-o", "x.bin"], "esptool merge-bin: not modelled"),
    (["--nonsense", "erase-flash"], "esptool option --nonsense: not modelled"),
])
def test_esptool_refusals_leave_the_flash_alone(tmp_path, flash, args, message):
    (tmp_path / "FILE").write_bytes(b"x" * 100)
    args = [str(tmp_path / a) if a == "FILE" else a for a in args]
    before = flash.read_bytes()
    with pytest.raises(ToolError, match=message.replace("(", r"\(").replace(".", r"\.")):
        serialtools.run(flash, ["esptool"] + args)
    assert flash.read_bytes() == before


def test_the_command_line(tmp_path, flash):
    out = tmp_path / "t.bin"
    r = subprocess.run([sys.executable, "-m", "emulator", "esptool", str(flash), "--chip",
                        "esp32", "read-flash", "0x8000", "0x20", str(out)], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:2] == b"\xaa\x50"
    r = subprocess.run([sys.executable, "-m", "emulator", "esptool", str(flash),
                        "erase-region", "1", "0x1000"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 1 and "Offset to erase from must be a multiple of 4096" in r.stderr
    used = tmp_path / "used.bin"
    r = subprocess.run([sys.executable, "-m", "emulator", "mkused", str(used), "--variant", "ota",
                        "--no-log"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and "filesystem at 0x310000 (960 KB)" in r.stdout, r.stderr


# ---------------------------------------------------------------- mpremote
def test_mpremote_cp_copies_as_mpremote_does(tmp_path, flash):
    Device(flash, echo=None).run(timeout=60)  # the first boot makes the filesystem
    proj = tmp_path / "proj"
    (proj / "lib" / "pkg").mkdir(parents=True)
    (proj / "main.py").write_text("# main\n")
    (proj / "boot.py").write_text("# boot\n")
    (proj / "lib" / "pkg" / "m.py").write_text("X = 1\n")
    (tmp_path / "umqtt").mkdir()
    (tmp_path / "umqtt" / "simple.py").write_text("# umqtt\n")
    serialtools.run(flash, [
        "mpremote", "connect", "/dev/ttyUSB0", "cp", str(proj / "boot.py"), str(proj / "main.py"),
        ":", "+", "cp", "-r", str(proj / "lib"), ":", "+", "cp", "-r", str(tmp_path / "umqtt"),
        ":lib", "+", "cp", str(proj / "main.py"), ":copy.py", "+", "reset"])
    fs = FlashFS(flash)
    assert fs.files() == ["boot.py", "copy.py", "lib/pkg/m.py", "lib/umqtt/simple.py", "main.py"]
    assert fs.read_file("boot.py") == b"# boot\n"  # the default one, overwritten
    with pytest.raises(ToolError, match="-r not specified"):
        serialtools.run(flash, ["mpremote", "cp", str(proj / "lib"), ":"])
    with pytest.raises(ToolError, match="mpremote rm: not modelled"):
        serialtools.run(flash, ["mpremote", "rm", ":main.py"])


def test_mpremote_needs_the_filesystem_the_first_boot_makes(tmp_path, flash):
    src = tmp_path / "a.py"
    src.write_text("A = 1\n")
    with pytest.raises(FlashFSError, match="erased: the board has not booted since it was "
                                           "flashed"):
        serialtools.run(flash, ["mpremote", "cp", str(src), ":"])
    data = bytearray(flash.read_bytes())
    data[0x310000:0x310004] = b"junk"
    flash.write_bytes(bytes(data))
    with pytest.raises(FlashFSError, match="not a filesystem the board mounts"):
        serialtools.run(flash, ["mpremote", "cp", str(src), ":"])


def test_which_names_the_tool():
    assert serialtools.which(["/venv/bin/esptool", "--chip", "esp32"]) == ("esptool",
                                                                           ["--chip", "esp32"])
    assert serialtools.which(["python3", "-m", "esptool", "erase-flash"]) == ("esptool",
                                                                              ["erase-flash"])
    assert serialtools.which(["esptool.py", "version"])[0] == "esptool"
    assert serialtools.which(["mpremote", "reset"]) == ("mpremote", ["reset"])
    with pytest.raises(ToolError, match="not esptool or mpremote"):
        serialtools.run("x.bin", ["rm", "-rf", "x"])


def test_merged_image_is_what_makeimg_writes(tmp_path):
    app = build_app_image("1.0.0", size=50_000)
    image = merged_image(app)
    assert image[0] == ff.IMAGE_MAGIC and image[0x7000:0x7002] == b"\xaa\x50"
    assert image[0xF000:] == app and set(image[0x7C00:0xF000]) == {0xFF}
    labels = [p.label for p in ff.parse_partition_table(image[0x7000:0x7C00])]
    assert labels == ["nvs", "otadata", "phy_init", "ota_0", "ota_1", "romfs"]
