"""`fota flash`: the esptool and mpremote commands that set up a board, new or used.

Which address the firmware goes to is read from the file:
- a full flash image (bootloader first, a partition table 0x8000 bytes into the flash; what
  MicroPython's makeimg.py writes as firmware.bin) is written at the bootloader's address
  (0x1000 on ESP32 and ESP32-S2, 0x0 on later chips). A used board may hold anything where
  the image's partition table puts its data partitions: the filesystem of its earlier layout
  (stock MicroPython's is at 0x200000, or 0x310000 on the OTA build), an old otadata that
  starts another app. So every data partition of the new table that the image does not cover
  is erased first (write-flash erases what it writes, the 0xFF padding between bootloader, table
  and app included: nvs, otadata, phy_init), and so is the filesystem MicroPython registers
  at boot over the rest of the flash ("vfs", ports/esp32/main.c): its first boot formats it
  only when the first block is erased (modules/inisetup.py, check_bootsec), and otherwise
  prints "The filesystem appears to be corrupted" for ever. With --erase-all the whole flash
  is erased first instead (esptool erase-flash).
- an app image alone (an `esp_app_desc_t` at offset 32: `micropython.bin`, the `.app-bin`
  downloads, a `fota build` release) is written into ota_0 (0x10000) after erasing otadata
  (0xd000, 0x2000 bytes), so that the bootloader starts ota_0 whatever slot ran before. The
  board keeps its partition table, its filesystem and its files; its table is read first
  (esptool read-flash) and must have those OTA slots: a stock ESP32_GENERIC board (one
  factory app, no otadata) needs the full image.

Every esptool step but the last leaves the chip in its ROM loader (`--after no-reset`), so
that the old firmware never runs between an erase and the write. After the last one the board
boots the new firmware, which makes its filesystem; then mpremote copies the device files:
boot.py, main.py, lib/, umqtt (into lib/) and the device folder made by `fota provision`
(config.json, certs/), and resets the board.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import partitions as pt
from .provisioning import check_device_folder
from .release import CHIP_IDS, IMAGE_MAGIC, ImageError, inspect_image

BOOTLOADER_OFFSET = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
PARTITION_TABLE = 0x8000
APP_OFFSET = 0x10000  # ota_0
OTADATA = (0xD000, 0x2000)
DEFAULT_BAUD = 460800
SECTOR = 0x1000
WHY = {  # what each data partition is, and why it must start erased
    "nvs": "ESP-IDF's key-value store",
    "otadata": "which app slot boots: erased, the bootloader starts the first one",
    "phy_init": "radio calibration",
    "romfs": "the application slots: a ROMFS image in slot 0 is taken for the application",
    "vfs": "the filesystem: the first boot formats it only if its first block is erased; "
           "old files there from another layout stop the board at \"The filesystem appears "
           "to be corrupted\"",
    "ffat": "the filesystem (FAT)",
}


def app_slot_size(chip: str = "esp32") -> int:
    """ota_0's size on the project's board of `chip` (2.4 MB on the ESP32-S3's 8 MB table)."""
    path, table = pt.board_table(chip)
    return next(p.size for p in table if p.name == "ota_0")


@dataclass
class FlashPlan:
    kind: str  # "full" or "app"
    offset: int
    commands: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the commands do and why

    def lines(self) -> list[str]:
        return [shlex.join(c) for c in self.commands]


def firmware_kind(data: bytes, chip: str = "esp32") -> tuple[str, int]:
    """("app", 0x10000) or ("full", bootloader offset); ImageError for anything else."""
    try:
        app = inspect_image(data, chip)
    except ImageError as app_error:
        table = PARTITION_TABLE - BOOTLOADER_OFFSET[chip]
        if (len(data) > table + 32 and data[0] == IMAGE_MAGIC
                and data[table:table + 2] == b"\xaa\x50"):
            chip_id = int.from_bytes(data[12:14], "little")
            if chip_id != CHIP_IDS[chip]:
                raise ImageError(f"the full image's bootloader is not for {chip} "
                                 f"(chip id {chip_id})") from None
            return "full", BOOTLOADER_OFFSET[chip]
        raise app_error from None
    slot = app_slot_size(chip)
    if app.size > slot:
        raise ImageError(f"app image of {app.size} bytes does not fit an OTA slot of the "
                         f"{chip} board ({slot} bytes)")
    return "app", APP_OFFSET


def full_image_layout(data: bytes, chip: str = "esp32") -> tuple[list[pt.Partition], int]:
    """The partition table inside a full image and the flash size its bootloader header gives
    (byte 3, as esptool writes it); ImageError if the table is unreadable or its first app
    partition cannot hold the app."""
    boot = BOOTLOADER_OFFSET[chip]
    table_at = PARTITION_TABLE - boot
    try:
        table = pt.parse_binary(data[table_at:table_at + pt.TABLE_MAX_LEN],
                                "the full image's partition table")
    except pt.TableError as e:
        raise ImageError(str(e)) from None
    flash_size = pt.FLASH_SIZES.get(data[3] >> 4)
    if flash_size is None:
        raise ImageError(f"the full image's bootloader header gives no flash size (byte 3 is "
                         f"{data[3]:#04x})")
    app = next((p for p in table if p.is_app()), None)
    if app is None:
        raise ImageError("the full image's partition table has no app partition")
    app_len = boot + len(data) - app.offset
    if app_len > app.size:
        raise ImageError(f"the full image holds {app_len:,} bytes from {app.name} "
                         f"({app.offset:#x}), which holds {app.size:,}")
    return table, flash_size


def erase_regions(table: list[pt.Partition], flash_size: int,
                  written: tuple[int, int]) -> list[tuple[int, int, list[str]]]:
    """(start, end, partition names) of what must be erased before a full image goes on a used
    board: every data partition of its table and the runtime filesystem, less what write-flash
    erases itself (the sectors from `written[0]` to `written[1]`), adjacent pieces merged."""
    areas = [p for p in table if p.type == pt.TYPES["data"]]
    fs = pt.filesystem(table, flash_size)
    if fs is not None and fs not in areas:
        areas.append(fs)
    lo = written[0] // SECTOR * SECTOR
    hi = -(-written[1] // SECTOR) * SECTOR
    pieces: list[tuple[int, int, str]] = []
    for p in sorted(areas, key=lambda p: p.offset):
        start, end = p.offset, min(p.end, flash_size)
        for a, b in ((start, min(end, lo)), (max(start, hi), end)):
            if a < b:
                pieces.append((a, b, p.name))
    merged: list[tuple[int, int, list[str]]] = []
    for a, b, name in pieces:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b, merged[-1][2] + [name])
        else:
            merged.append((a, b, [name]))
    return merged


def _tool(name: str) -> list[str]:
    """The installed console script next to this Python, else `python -m name`."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", name]


def find_project(start: Path | None = None) -> Path | None:
    """The folder holding boot.py, main.py and lib/: the current folder or the package's repo."""
    here = Path(__file__).resolve().parents[2]
    for cand in ([start] if start else []) + [Path.cwd(), here]:
        if cand and (cand / "boot.py").is_file() and (cand / "lib").is_dir():
            return cand
    return None


def plan(port: str, firmware: Path, device: Path, project: Path, chip: str = "esp32",
         baud: int = DEFAULT_BAUD, umqtt: Path | None = None, erase_all: bool = False,
         workdir: Path | None = None) -> FlashPlan:
    """Check every input and assemble the commands (raises ValueError / ImageError).
    `workdir`: where an app image's plan reads the board's partition table to."""
    try:
        data = firmware.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read firmware {firmware}: {e.strerror}") from None
    kind, offset = firmware_kind(data, chip)
    if kind == "full":
        table, flash_size = full_image_layout(data, chip)
    elif erase_all:
        raise ValueError("--erase-all goes with a full image: an app image alone needs the "
                         "bootloader and the partition table the board has")
    check_device_folder(device)
    for name in ("boot.py", "main.py"):
        if not (project / name).is_file():
            raise ValueError(f"{project / name} not found (use --project DIR)")
    if not (project / "lib").is_dir():
        raise ValueError(f"{project / 'lib'} not found (use --project DIR)")
    umqtt = umqtt or project / ".deps" / "umqtt"
    if not (umqtt / "simple.py").is_file():
        raise ValueError(f"{umqtt / 'simple.py'} not found (run `make setup`, or use --umqtt)")
    esptool = _tool("esptool") + ["--chip", chip, "--port", port, "--baud", str(baud)]
    stay = esptool + ["--after", "no-reset"]  # the chip stays in its ROM loader
    p = FlashPlan(kind, offset)
    end = offset + len(data)
    if kind == "full":
        covered = [q.name for q in table if q.offset < end]
        p.notes.append(f"full image at {offset:#x}: bootloader, partition table and app; "
                       f"write-flash erases what it covers ({offset:#x}-{end - 1:#x}: "
                       f"{', '.join(covered)})")
        if erase_all:
            p.commands.append(stay + ["erase-flash"])
            p.notes.append("erase-flash first (--erase-all): the whole flash, every file, the "
                           "NVS and both app slots")
        else:
            for a, b, names in erase_regions(table, flash_size, (offset, end)):
                p.commands.append(stay + ["erase-region", hex(a), hex(b - a)])
                p.notes.append(f"erase-region {a:#x}-{b - 1:#x} first: " + "; ".join(
                    f"{n} ({WHY.get(n, 'a data partition of the new table')})" for n in names))
            fs = pt.filesystem(table, flash_size)
            if fs is not None and fs not in table:
                p.notes.append(f"the filesystem runs to the end of the flash, {flash_size >> 20} "
                               "MB as the image's bootloader header says; on a bigger chip it "
                               "is bigger, and its first block, erased here, is what the first "
                               "boot looks at")
        others = [q.name for q in pt.ota_slots(table)[1:]]
        if others and not erase_all:
            p.notes.append(f"kept: {', '.join(others)}, whatever it holds (with otadata erased "
                           "the bootloader starts the first app slot)")
        if not erase_all:
            p.notes.append("--erase-all erases the whole flash instead")
    else:
        work = workdir or Path(".")
        board_table = work / "board-partitions.bin"
        p.commands.append(stay + ["read-flash", hex(PARTITION_TABLE), hex(pt.TABLE_MAX_LEN),
                                  str(board_table)])
        p.commands.append([sys.executable, "-m", "fotatools.flashing", "check-table",
                           str(board_table), str(len(data))])
        p.commands.append(stay + ["erase-region", hex(OTADATA[0]), hex(OTADATA[1])])
        p.notes.append(f"app image at {offset:#x} (ota_0), onto the bootloader and partition "
                       "table the board has: its table is read and checked first (otadata at "
                       f"{OTADATA[0]:#x}, ota_0 at {offset:#x} with room for {len(data):,} "
                       "bytes, a second OTA slot)")
        p.notes.append(f"erase-region {OTADATA[0]:#x}-{sum(OTADATA) - 1:#x} first: otadata "
                       "(the bootloader then starts ota_0, whatever slot ran before)")
        p.notes.append("kept: the board's filesystem and its files (the project's are copied "
                       "over them), its NVS and its other app slot")
    p.commands.append(esptool + ["write-flash", hex(offset), str(firmware)])
    p.commands.append(_tool("mpremote") + [
        "connect", port,
        "cp", str(project / "boot.py"), str(project / "main.py"), ":", "+",
        "cp", "-r", str(project / "lib"), ":", "+",
        "cp", "-r", str(umqtt), ":lib", "+",
        "cp", "-r", str(device / "certs"), ":", "+",
        "cp", str(device / "config.json"), ":", "+",
        "reset"])
    return p


def check_table(data: bytes, app_size: int) -> str:
    """The board's partition table (read at 0x8000) against an app image's needs: otadata
    where the plan erases it, ota_0 where it writes and big enough, a second OTA slot.
    -> a line saying what the board has; ValueError saying what to do otherwise."""
    try:
        table = pt.parse_binary(data, "the board's partition table (at 0x8000)")
    except pt.TableError as e:
        raise ValueError(f"{e}: flash the full image (it brings this project's table)") from None
    slots = pt.ota_slots(table)
    ota = pt.otadata(table)
    if len(slots) < 2 or ota is None:
        apps = ", ".join(f"{q.name} at {q.offset:#x}" for q in table if q.is_app()) or "none"
        raise ValueError(f"the board's partition table has no OTA slots (app partitions: "
                         f"{apps}; stock MicroPython's ESP32_GENERIC has one factory app): "
                         "flash the full image instead")
    first = slots[0]
    if (ota.offset, ota.size) != OTADATA or first.offset != APP_OFFSET:
        raise ValueError(f"the board's partition table has otadata at {ota.offset:#x} and "
                         f"{first.name} at {first.offset:#x}, not {OTADATA[0]:#x} and "
                         f"{APP_OFFSET:#x}: flash the full image instead")
    if app_size > first.size:
        raise ValueError(f"the app image is {app_size:,} bytes, the board's {first.name} "
                         f"holds {first.size:,}")
    rest = [q for q in table if q.type == pt.TYPES["data"] and q.name in ("vfs", "ffat")]
    fs = (f"its filesystem {pt.describe(rest[0])}" if rest else
          f"its filesystem from {max(q.end for q in table):#x} to the end of the flash")
    return (f"the board's table: {', '.join(pt.describe(q) for q in slots)}, otadata at "
            f"{ota.offset:#x}; {fs} is kept")


def run(p: FlashPlan) -> int:
    """Run the commands in order; return 0, or the exit code of the first that fails."""
    for cmd in p.commands:
        print("$ " + shlex.join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            return rc
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m fotatools.flashing check-table FILE APP_SIZE`: a step of `fota flash`."""
    ap = argparse.ArgumentParser(prog="python -m fotatools.flashing")
    sub = ap.add_subparsers(dest="command", required=True)
    q = sub.add_parser("check-table", help="check a board's partition table (esptool "
                                           "read-flash 0x8000 0xc00 FILE) for an app image")
    q.add_argument("table", type=Path)
    q.add_argument("app_size", type=int)
    a = ap.parse_args(argv)
    try:
        print(check_table(a.table.read_bytes(), a.app_size))
    except (OSError, ValueError) as e:
        print(f"fota: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
