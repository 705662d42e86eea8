"""ROMFS on the emulated board: the FOTA_ESP32 table's "romfs" partition, vfs.rom_ioctl as
ports/esp32/esp32_partition.c has it, the /rom mount at boot, writing a slot through the
Partition and mounting it in place; and the stock table, which has none of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator.emuhelpers import EMIT, Board, records, run_cli
from emulator import flashfmt as ff
from emulator.flash import ROMFS_OFFSET, ROMFS_SIZE, Flash, create_flash, romfs_slot_span
from fotatools.appimage import build_romfs, romfs_files


def _app(folder: Path, name: str, text: str) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(f"NAME = {name!r}\n{text}")
    return build_romfs(folder)


@pytest.fixture
def romfs_board(tmp_path, v1_image) -> tuple[Board, bytes, bytes]:
    a = _app(tmp_path / "a", "A", "")
    b = _app(tmp_path / "b", "B", "def twice(x):\n    return 2 * x\n")
    flash = tmp_path / "flash.bin"
    create_flash(flash, v1_image, romfs=True, romfs_slots={0: a})
    fs = tmp_path / "fs"
    fs.mkdir()
    (tmp_path / "b.romfs").write_bytes(b)
    return Board(flash, fs, tmp_path / "state"), a, b


def test_table_and_slots(tmp_path, v1_image):
    create_flash(tmp_path / "f.bin", v1_image, romfs=True)
    parts = {p.label: p for p in Flash(tmp_path / "f.bin").partitions()}
    rom = parts["romfs"]
    assert (rom.type, rom.subtype, rom.offset, rom.size) == (
        ff.TYPE_DATA, ff.SUBTYPE_DATA_ROMFS, ROMFS_OFFSET, ROMFS_SIZE)
    assert parts["vfs"].offset == ROMFS_OFFSET + ROMFS_SIZE
    assert parts["vfs"].offset + parts["vfs"].size == 4 * 1024 * 1024
    assert romfs_slot_span(1) == (ROMFS_OFFSET + ROMFS_SIZE // 2, ROMFS_SIZE // 2)
    with pytest.raises(ValueError):
        romfs_slot_span(2)


def test_boot_mounts_slot0_and_rom_ioctl(romfs_board):
    board, a, _ = romfs_board
    r = records(board.run(EMIT + """
import sys, vfs, os, esp32
emit(sys.path)
import app
emit(app.NAME)
emit(os.listdir("/rom"))
seg = vfs.rom_ioctl(2, 0)
emit([vfs.rom_ioctl(1), seg.info(), vfs.rom_ioctl(2, 1).info() == seg.info(),
      vfs.rom_ioctl(3, 0, 100), vfs.rom_ioctl(4, 0, 0, b"x"), vfs.rom_ioctl(5, 0),
      vfs.rom_ioctl(6, 0)])
emit([isinstance(seg, esp32.Partition), len(memoryview(seg)), seg.ioctl(4, 0), seg.ioctl(5, 0)])
emit([p.info()[4] for p in esp32.Partition.find(esp32.Partition.TYPE_DATA, label="romfs")])
emit(bytes(memoryview(seg)[:3]).hex())
emit([repr(seg), str(seg)])
emit([sys.implementation._build, sys.implementation._machine, sys.implementation._mpy])
emit([err(len, seg), err(lambda: seg[0])])
"""))
    assert r[0][-2:] == ["/rom", "/rom/lib"]
    assert r[1] == "A"
    assert r[2] == ["app.mpy"]
    assert r[3][0] == 1
    assert r[3][1] == [ff.TYPE_DATA, ff.SUBTYPE_DATA_ROMFS, ROMFS_OFFSET, ROMFS_SIZE, "romfs",
                       False]
    assert r[3][2:] == [True, -22, -22, -22, -22]
    assert r[4] == [True, ROMFS_SIZE, ROMFS_SIZE // 4096, 4096]
    assert r[5] == ["romfs"]
    assert r[6] == a[:3].hex()
    shown = "<Partition type=1, subtype=143, address=3211264, size=262144, label=romfs, encrypted=0>"
    assert r[7] == [shown, shown]
    assert r[8] == ["FOTA_ESP32", "ESP32 with AWS IoT FOTA with ESP32", 11014]
    assert [e[0] for e in r[9]] == ["TypeError", "TypeError"]


def test_write_other_slot_and_mount_it(romfs_board):
    """Write slot 1 as mpremote does on this port (ioctl(6) erases, writeblocks with an
    offset programs), then mount it in place: the map shows the new bytes at once."""
    board, _, b = romfs_board
    board.write("b.romfs", "")
    (board.fs / "b.romfs").write_bytes(b)
    r = records(board.run(EMIT + f"""
import vfs, sys
seg = vfs.rom_ioctl(2, 0)
half = {ROMFS_SIZE // 2}
first = half // 4096
with open("b.romfs", "rb") as f:
    img = f.read()
for i in range((len(img) + 4095) // 4096):
    seg.ioctl(6, first + i)
seg.writeblocks(first, img, 0)
emit(bytes(memoryview(seg)[half:half + len(img)]) == img)
vfs.umount("/rom")
vfs.mount(vfs.VfsRom(memoryview(seg)[half:]), "/rom")
import app
emit([app.NAME, app.twice(21)])
"""))
    assert r == [True, ["B", 42]]
    start, size = romfs_slot_span(1)
    assert Flash(board.flash).romfs_slot(1)[:len(b)] == b
    assert Flash(board.flash).read(start + len(b), 16) == b"\xff" * 16


def test_slot_written_is_there_after_reset(romfs_board):
    board, _, b = romfs_board
    (board.fs / "b.romfs").write_bytes(b)
    # boot 1 writes slot 0 (the one mounted at boot) and resets; boot 2 mounts it at /rom
    r = records(board.run(EMIT + """
import vfs, machine, os
try:
    os.stat("done")
    import app
    emit(app.NAME)
except OSError:
    seg = vfs.rom_ioctl(2, 0)
    img = open("b.romfs", "rb").read()
    vfs.umount("/rom")
    p = __import__("esp32").Partition.find(1, label="romfs")[0]
    p.writeblocks(0, img + b"\\xff" * (-len(img) % 4096))
    open("done", "w").close()
    machine.reset()
""", max_boots=2))
    assert r == ["B"]


def test_stock_board_has_no_rom_ioctl(board):
    r = records(board.run(EMIT + """
import vfs, sys, esp32
emit([hasattr(vfs, "rom_ioctl"), "/rom" in sys.path,
      esp32.Partition.find(esp32.Partition.TYPE_DATA, label="romfs")])
"""))
    assert r == [[False, False, []]]


def test_blank_romfs_mounts_nothing(tmp_path, v1_image):
    flash = tmp_path / "flash.bin"
    create_flash(flash, v1_image, romfs=True)
    (tmp_path / "fs").mkdir()
    board = Board(flash, tmp_path / "fs", tmp_path / "state")
    r = records(board.run(EMIT + """
import vfs, sys, os
emit([vfs.rom_ioctl(1), "/rom" in sys.path, "rom" in os.listdir("/")])
"""))
    assert r == [[1, False, False]]


def test_mkflash_layouts(tmp_path, v1_image):
    (tmp_path / "app.bin").write_bytes(v1_image)
    img = _app(tmp_path / "a", "A", "")
    (tmp_path / "a.romfs").write_bytes(img)
    out = run_cli("mkflash", str(tmp_path / "f.bin"), "--app", str(tmp_path / "app.bin"),
                  "--layout", "fota", "--romfs-1", str(tmp_path / "a.romfs"))
    assert out.returncode == 0, out.stderr
    assert Flash(tmp_path / "f.bin").romfs_slot(1)[:len(img)] == img
    out = run_cli("mkflash", str(tmp_path / "g.bin"), "--app", str(tmp_path / "app.bin"),
                  "--romfs-0", str(tmp_path / "a.romfs"))
    assert out.returncode != 0 and "--layout fota" in out.stderr


def test_info_shows_romfs_slots(tmp_path, v1_image):
    img = _app(tmp_path / "a", "A", "")
    create_flash(tmp_path / "f.bin", v1_image, romfs=True, romfs_slots={1: img})
    summary = Flash(tmp_path / "f.bin").summary()
    assert [(r["slot"], r["image"]) for r in summary["romfs"]] == [(0, None), (1, len(img))]
    out = run_cli("info", str(tmp_path / "f.bin"))
    assert out.returncode == 0, out.stderr
    assert f"romfs slot 1: 0x330000 size 0x20000, a ROMFS image of {len(img)} bytes" in out.stdout
    create_flash(tmp_path / "g.bin", v1_image)
    assert Flash(tmp_path / "g.bin").summary()["romfs"] == []


ROOT = Path(__file__).resolve().parents[2]
IMPORT_COST = """import gc, sys
{path}
gc.collect()
a = gc.mem_alloc()
import app
gc.collect()
print("import_bytes", gc.mem_alloc() - a)
"""


def test_in_place_import_keeps_bytecode_out_of_the_heap(tmp_path, v1_image):
    """Importing from the mapped ROMFS slot costs the heap less than the same .mpy files from
    the filesystem, by about the bytecode's size: the map is not in the firmware's heap."""
    folder = tmp_path / "big"
    folder.mkdir()
    for name in ("ecdsa.py", "plan.py", "romimage.py"):  # the library's, as an application's own
        (folder / name).write_text((ROOT / "lib" / "fota" / name).read_text())
    (folder / "app.py").write_text("import ecdsa, plan, romimage\n")
    image = build_romfs(folder)
    costs = {}
    for where in ("rom", "fs"):
        flash, fs = tmp_path / f"{where}.bin", tmp_path / f"fs-{where}"
        create_flash(flash, v1_image, romfs=True,
                     romfs_slots={0: image} if where == "rom" else None)
        fs.mkdir()
        if where == "fs":
            for path, data in romfs_files(image).items():
                (fs / "appfs" / path).parent.mkdir(parents=True, exist_ok=True)
                (fs / "appfs" / path).write_bytes(data)
        board = Board(flash, fs, tmp_path / f"state-{where}")
        path = "" if where == "rom" else 'sys.path.insert(0, "/appfs")'
        out = board.run(IMPORT_COST.format(path=path), heapsize="256k").console
        costs[where] = int(out.split("import_bytes ")[1].split()[0])
    assert costs["fs"] - costs["rom"] > len(image) // 2, costs


def test_the_map_is_not_in_the_firmware_heap(tmp_path, v1_image):
    """The firmware sees about the heap it was given on both layouts: the runner gives the
    interpreter the map's size on top."""
    free = {}
    for romfs in (False, True):
        flash, fs = tmp_path / f"{romfs}.bin", tmp_path / f"fs-{romfs}"
        create_flash(flash, v1_image, romfs=romfs)
        fs.mkdir()
        board = Board(flash, fs, tmp_path / f"state-{romfs}")
        out = board.run("import gc\ngc.collect()\nprint('free', gc.mem_free())\n",
                        heapsize="100k").console
        free[romfs] = int(out.split("free ")[1].split()[0])
    assert abs(free[True] - free[False]) < 4096, free
    assert 90_000 < free[True] < 110_000, free


CUT_WRITER = EMIT + """
import vfs, os, sys
seg = vfs.rom_ioctl(2, 0)
half = len(memoryview(seg)) // 2
try:
    os.stat("wrote")
    p = __import__("esp32").Partition.find(1, label="romfs")[0]
    buf = bytearray(4096)
    same = True
    for b in range(half // 4096, half // 4096 + 8):
        p.readblocks(b, buf)
        same = same and bytes(memoryview(seg)[b * 4096:(b + 1) * 4096]) == bytes(buf)
    import app
    emit(["after", same, app.NAME, bytes(memoryview(seg)[half:half + 4]).hex()])
except OSError:
    open("wrote", "w").close()
    for b in range(8):
        seg.writeblocks(half // 4096 + b, bytes([b]) * 4096)
    emit(["done"])
"""


def test_power_cut_in_a_slot_write(tmp_path, v1_image):
    """Cut while slot 1 is written: the next boot maps what the flash holds (old, erased or
    half-programmed sectors) and slot 0 still mounts at /rom."""
    a = _app(tmp_path / "a", "A", "")

    def board(name: str) -> Board:
        flash = tmp_path / f"{name}.bin"
        create_flash(flash, v1_image, romfs=True, romfs_slots={0: a})
        (tmp_path / f"fs-{name}").mkdir()
        return Board(flash, tmp_path / f"fs-{name}", tmp_path / f"state-{name}")

    whole = board("whole").run(CUT_WRITER, max_boots=1)
    assert records(whole) == [["done"]]
    ops = whole.flash_stats["ops"]
    cut = board("cut").run(CUT_WRITER, cut_at=ops - 6, max_boots=2)
    r = records(cut)
    assert [b.end for b in cut.boots][0] == "power-cut"
    assert r[-1][:3] == ["after", True, "A"], cut.console
    assert r[-1][3] == "00000000"  # the first sector was written before the cut
