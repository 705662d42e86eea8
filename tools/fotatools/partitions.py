"""ESP32 partition tables: the CSV a board is built with, or the binary table in flash.

The CSV is ESP-IDF's (components/partition_table/gen_esp32part.py): one partition a line,
`name, type, subtype, offset, size, flags`, `#` comments; types `app`/`data` or numbers,
subtypes by name or number, sizes with K/M suffixes, an empty offset placed after the
previous partition (app partitions on 64 KB, others on 4 KB). The binary table sits at
0x8000: 32-byte entries (magic 0xAA50), an MD5 entry (0xEBEB), then 0xFF.

MicroPython's ESP32 port (1.26 and later, ports/esp32/main.c) registers a "vfs" partition
over the rest of the flash when the table has neither "vfs" nor "ffat": `filesystem()` says
where that is, the place a board makes its filesystem on its first boot.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

TABLE_OFFSET = 0x8000
TABLE_MAX_LEN = 0xC00
ENTRY = struct.Struct("<2sBBII16sI")
MAGIC, MD5_MAGIC = b"\xaa\x50", b"\xeb\xeb"
SECTOR = 0x1000
APP_ALIGN = 0x10000
TYPES = {"app": 0x00, "data": 0x01}
APP_SUBTYPES = {"factory": 0x00, "test": 0x20, **{f"ota_{i}": 0x10 + i for i in range(16)}}
DATA_SUBTYPES = {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
                 "efuse": 0x05, "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81,
                 "spiffs": 0x82, "littlefs": 0x83}
FLAGS = {"encrypted": 1, "readonly": 2}
# the flash size field of the bootloader's image header (byte 3, high nibble), as esptool
# writes it (esptool/targets/esp32.py FLASH_SIZES)
FLASH_SIZES = {0: 1 << 20, 1: 2 << 20, 2: 4 << 20, 3: 8 << 20, 4: 16 << 20, 5: 32 << 20,
               6: 64 << 20, 7: 128 << 20}


# firmware/FOTA_ESP32/partitions.csv, for a fota installed without the project's folder
# (tests/cli/test_release.py checks that the two agree)
FOTA_ESP32 = """\
nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
ota_0,    app,  ota_0,   0x10000,  0x180000,
ota_1,    app,  ota_1,   0x190000, 0x180000,
romfs,    data, 0x8f,    0x310000, 0x40000,
"""

# firmware/FOTA_ESP32S3/partitions.csv: the ESP32-S3 board (8 MB, MicroPython's
# partitions-8MiBplus-ota.csv and a romfs partition); the ESP32-C3 board's table is the ESP32's
FOTA_ESP32S3 = """\
nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
ota_0,    app,  ota_0,   0x10000,  0x270000,
ota_1,    app,  ota_1,   0x280000, 0x270000,
romfs,    data, 0x8f,    0x4f0000, 0x40000,
"""

# The project's board of each chip: (its table in the project folder, the same built in). A chip
# without a board of the project's (the ESP32-S2) takes the ESP32's, MicroPython's 4 MB layout.
BOARD_TABLES = {
    "esp32": ("firmware/FOTA_ESP32/partitions.csv", FOTA_ESP32),
    "esp32s3": ("firmware/FOTA_ESP32S3/partitions.csv", FOTA_ESP32S3),
    "esp32c3": ("firmware/FOTA_ESP32C3/partitions.csv", FOTA_ESP32),
}


def board_table(chip: str) -> tuple[str, list[Partition]]:
    """The project's board of `chip`: the path of its table in the project folder, and the
    table (the built-in copy)."""
    path, text = BOARD_TABLES.get(chip, BOARD_TABLES["esp32"])
    return path, parse_csv(text, path)


class TableError(ValueError):
    """Not a partition table this tool can read; the message is one line for a user."""


@dataclass(frozen=True)
class Partition:
    name: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.size

    def is_app(self) -> bool:
        return self.type == TYPES["app"]

    def is_ota_slot(self) -> bool:
        return self.is_app() and 0x10 <= self.subtype < 0x20


def _number(text: str, what: str, where: str) -> int:
    m = re.fullmatch(r"(0x[0-9a-fA-F]+|\d+)\s*([kKmM]?)", text.strip())
    if not m:
        raise TableError(f"{where}: bad {what} {text.strip()!r}")
    value = int(m.group(1), 0)
    return value * {"": 1, "k": 1024, "m": 1 << 20}[m.group(2).lower()]


def parse_csv(text: str, source: str = "partition table") -> list[Partition]:
    """The partitions of a CSV table, offsets filled in as gen_esp32part.py does."""
    parts: list[Partition] = []
    last_end = TABLE_OFFSET + SECTOR  # the table takes one sector
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} line {n}"
        fields = [f.strip() for f in line.split(",")] + [""] * 6
        name, ptype, subtype, offset, size, flags = fields[:6]
        if not name or len(name.encode()) > 16:
            raise TableError(f"{where}: a partition name is 1..16 bytes")
        if ptype in TYPES:
            type_ = TYPES[ptype]
        else:
            type_ = _number(ptype, "type", where)
        names = APP_SUBTYPES if type_ == TYPES["app"] else DATA_SUBTYPES
        sub = names[subtype] if subtype in names else _number(subtype, "subtype", where)
        if not size:
            raise TableError(f"{where}: {name} has no size")
        size_ = _number(size, "size", where)
        align = APP_ALIGN if type_ == TYPES["app"] else SECTOR
        if offset:
            off = _number(offset, "offset", where)
        else:
            off = -(-last_end // align) * align
        if off % align:
            raise TableError(f"{where}: {name} at {off:#x} is not aligned to {align:#x}")
        if off < last_end:
            raise TableError(f"{where}: {name} at {off:#x} overlaps the partition before it")
        flag_bits = 0
        for flag in filter(None, (f.strip() for f in flags.split(":"))):
            if flag not in FLAGS:
                raise TableError(f"{where}: unknown flag {flag!r}")
            flag_bits |= FLAGS[flag]
        parts.append(Partition(name, type_, sub, off, size_, flag_bits))
        last_end = off + size_
    if not parts:
        raise TableError(f"{source}: no partitions")
    return parts


def parse_binary(data: bytes, source: str = "partition table") -> list[Partition]:
    """The partitions of a binary table (the bytes at 0x8000), checked as the bootloader does
    (esp_partition_table_verify): every entry's magic, and the MD5 entry when there is one."""
    parts: list[Partition] = []
    for pos in range(0, len(data) - ENTRY.size + 1, ENTRY.size):
        head = data[pos:pos + 2]
        if head == b"\xff\xff":
            break
        if head == MD5_MAGIC:
            if data[pos + 16:pos + 32] != hashlib.md5(data[:pos]).digest():
                raise TableError(f"{source}: the MD5 of the partition table does not match")
            break
        if head != MAGIC:
            raise TableError(f"{source}: no partition table (entry {pos // ENTRY.size} starts "
                             f"{head.hex()}, not aa50)")
        _, type_, sub, off, size, label, flags = ENTRY.unpack_from(data, pos)
        parts.append(Partition(label.split(b"\0", 1)[0].decode("utf-8", "replace"), type_, sub,
                               off, size, flags))
    if not parts:
        raise TableError(f"{source}: the partition table is empty (erased flash?)")
    return parts


def load(path: Path) -> list[Partition]:
    """A table from a file: binary (as in flash, or a build's partition-table.bin) or CSV."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise TableError(f"cannot read partition table {path}: {e.strerror}") from None
    if data[:2] == MAGIC:
        return parse_binary(data, str(path))
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise TableError(f"{path} is neither a CSV nor a binary partition table") from None
    return parse_csv(text, str(path))


def ota_slots(parts: list[Partition]) -> list[Partition]:
    return sorted((p for p in parts if p.is_ota_slot()), key=lambda p: p.subtype)


def find(parts: list[Partition], name: str) -> Partition | None:
    for p in parts:
        if p.name == name:
            return p
    return None


def otadata(parts: list[Partition]) -> Partition | None:
    for p in parts:
        if p.type == TYPES["data"] and p.subtype == DATA_SUBTYPES["ota"]:
            return p
    return None


def filesystem(parts: list[Partition], flash_size: int) -> Partition | None:
    """Where MicroPython's filesystem lives: the data partition "vfs" or "ffat" of the table,
    else the "vfs" partition main.c registers from the end of the last partition to the end of
    the flash (None if nothing is left)."""
    for p in parts:
        if p.type == TYPES["data"] and p.name in ("vfs", "ffat"):
            return p
    end = max(p.end for p in parts)
    if end >= flash_size:
        return None
    return Partition("vfs", TYPES["data"], DATA_SUBTYPES["fat"], end, flash_size - end)


def describe(p: Partition) -> str:
    return f"{p.name} ({p.offset:#x}, {p.size // 1024} KB)"
