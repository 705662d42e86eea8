"""The flash filesystem from the host: the device folder copied in as mpremote cp does, files
read back out of a flash image, and `python -m emulator fs`."""

from __future__ import annotations

import pytest

from emulator import flashfs
from emulator.device import Device
from emulator.flash import Flash, create_flash
from emulator.flashfs import FlashFS, FlashFSError
from tests.emulator.emuhelpers import EMIT, records, run_cli


def test_device_folder_is_copied_as_mpremote_cp_does(board):
    board.write("main.py", EMIT + """
import os
emit(open("conf.txt").read())
if "mine.txt" not in os.listdir():
    with open("mine.txt", "w") as f:
        f.write("written by the board")
""")
    board.write("conf.txt", "one")
    assert records(board.run()) == ["one"]
    fs = Flash(board.flash).filesystem()
    stamp = fs.mtime_ns("main.py")
    board.write("conf.txt", "two")           # changed on the host: overwritten on the flash
    assert records(board.run()) == ["two"]
    f = Flash(board.flash)
    assert f.read_file("mine.txt") == b"written by the board"  # not in the folder: kept
    assert f.filesystem().mtime_ns("main.py") == stamp  # unchanged: not written again
    assert f.files() == ["boot.py", "conf.txt", "main.py", "mine.txt"]


def test_a_board_without_a_folder_runs_what_its_flash_holds(board):
    board.write("main.py", EMIT + "emit('from the flash')\n")
    board.run()
    result = Device(board.flash, echo=None).run(timeout=30)
    assert records(result) == ["from the flash"]


def test_a_full_filesystem_is_a_clear_error(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "huge.bin").write_bytes(bytes(1024 * 1024))  # the partition is 960 KB
    with pytest.raises(FlashFSError, match="the vfs partition is full"):
        Device(flash, tmp_path / "fs", echo=None)


def test_reading_an_erased_partition_is_a_clear_error(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    with pytest.raises(FlashFSError, match="is erased: no filesystem"):
        Flash(flash).files()
    assert not Flash(flash).has_file("boot.py")


def test_host_parameters_match_vfs_lfs2_defaults():
    # extmod/vfs_lfs.c: readsize, progsize, lookahead 32; vfs_lfsx.c: block_cycles 100,
    # cache min(block, 4 * max(read, prog))
    assert (flashfs.READ_SIZE, flashfs.PROG_SIZE, flashfs.LOOKAHEAD) == (32, 32, 32)
    assert (flashfs.BLOCK_CYCLES, flashfs.CACHE_SIZE, flashfs.BLOCK_SIZE) == (100, 128, 4096)


def test_cli_fs_put_ls_cat_get(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "lib" / "m.py").write_text("X = 1\n")
    (src / "main.py").write_text("print('hi')\n")
    put = run_cli("fs", "put", str(flash), str(src))
    assert put.returncode == 0, put.stderr
    assert "wrote lib/m.py" in put.stdout
    one = tmp_path / "cfg.json"
    one.write_text("{}")
    assert run_cli("fs", "put", str(flash), str(one), "certs/cfg.json").returncode == 0
    ls = run_cli("fs", "ls", str(flash))
    assert ls.stdout.split() == ["boot.py", "certs/cfg.json", "lib/m.py", "main.py"]
    assert "d        0 lib/" in run_cli("fs", "ls", str(flash), "/").stdout
    assert run_cli("fs", "cat", str(flash), "lib/m.py").stdout == "X = 1\n"
    out = tmp_path / "out"
    out.mkdir()
    assert run_cli("fs", "get", str(flash), "main.py", str(out)).returncode == 0
    assert (out / "main.py").read_text() == "print('hi')\n"
    missing = run_cli("fs", "cat", str(flash), "nope.txt")
    assert missing.returncode == 64 and "nope.txt: no such file on the flash" in missing.stderr
    # and the board runs what was put there
    assert "hi" in Device(flash, echo=None).run(timeout=30).console.splitlines()


def test_cli_fs_refuses_a_partition_that_is_not_littlefs(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    data = bytearray(flash.read_bytes())
    data[0x310000:0x310004] = b"junk"
    flash.write_bytes(bytes(data))
    before = flash.read_bytes()
    src = tmp_path / "a.txt"
    src.write_text("a")
    r = run_cli("fs", "put", str(flash), str(src))
    assert r.returncode == 64 and "not a littlefs filesystem" in r.stderr
    assert flash.read_bytes() == before


def test_host_writes_are_not_board_flash_operations(board):
    board.write("main.py", "pass\n")
    result = board.run()
    # the bootloader's first-boot otadata only: the copy and the format were the host's
    assert result.flash_stats["ops"] == 2
    fs = FlashFS(board.flash)
    assert fs.read_file("main.py") == b"pass\n"


def test_info_tells_the_state_of_the_filesystem(tmp_path, v1_image):
    flash = create_flash(tmp_path / "flash.bin", v1_image)
    assert "filesystem: none yet (vfs erased" in run_cli("info", str(flash)).stdout
    src = tmp_path / "a.txt"
    src.write_text("a")
    run_cli("fs", "put", str(flash), str(src))
    assert "filesystem: littlefs, 2 file(s)" in run_cli("info", str(flash)).stdout
    data = bytearray(flash.read_bytes())
    data[0x310000:0x312000] = b"\x00" * 0x2000
    flash.write_bytes(bytes(data))
    summary = Flash(flash).summary()["filesystem"]
    assert summary["state"] == "unknown"
    assert "not littlefs" in run_cli("info", str(flash)).stdout
