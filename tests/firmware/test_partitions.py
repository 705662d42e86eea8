"""The FOTA_ESP32 board's partition table: what ESP-IDF's gen_esp32part.py would accept, that
it fits 4 MB with both app slots, and that the emulated board uses the same table."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from emulator import flashfmt as ff
from emulator.flash import ROMFS_SIZE, default_partitions

BOARD = Path(__file__).resolve().parents[2] / "firmware" / "FOTA_ESP32"
TYPES = {"app": ff.TYPE_APP, "data": ff.TYPE_DATA}
SUBTYPES = {"nvs": ff.SUBTYPE_DATA_NVS, "ota": ff.SUBTYPE_DATA_OTA, "phy": ff.SUBTYPE_DATA_PHY,
            "ota_0": ff.SUBTYPE_OTA_0, "ota_1": ff.SUBTYPE_OTA_0 + 1}


def board_table() -> list[ff.PartitionEntry]:
    rows = []
    lines = [ln for ln in (BOARD / "partitions.csv").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    for row in csv.reader(lines):
        name, ptype, sub, offset, size = (c.strip() for c in row[:5])
        subtype = SUBTYPES[sub] if sub in SUBTYPES else int(sub, 0)
        rows.append(ff.PartitionEntry(name, TYPES[ptype], subtype, int(offset, 0), int(size, 0)))
    return rows


def test_table_fits_4mb_and_packs():
    rows = board_table()
    ff.pack_partition_table(rows)  # alignment, overlaps, label rules
    end = max(p.offset + p.size for p in rows)
    assert end <= 4 * 1024 * 1024
    vfs = ff.with_runtime_vfs(rows, 4 * 1024 * 1024)[-1]
    assert (vfs.label, vfs.offset, vfs.size) == ("vfs", 0x350000, 0xB0000)
    apps = [p for p in rows if p.is_ota_app()]
    assert [p.size for p in apps] == [0x180000, 0x180000]
    rom = [p for p in rows if p.label == ff.ROMFS_LABEL]
    assert len(rom) == 1 and rom[0].type == ff.TYPE_DATA and rom[0].size == ROMFS_SIZE


def test_emulated_board_has_the_same_table():
    def key(p: ff.PartitionEntry) -> tuple:
        return (p.label, p.type, p.subtype, p.offset, p.size)
    assert [key(p) for p in board_table()] == [key(p) for p in default_partitions(romfs=True)]


def test_romfs_enabled():
    text = (BOARD / "mpconfigboard.h").read_text()
    assert re.search(r"^#define MICROPY_VFS_ROM \(1\)$", text, re.M)
    cmake = (BOARD / "mpconfigboard.cmake").read_text()
    assert "${MICROPY_BOARD_DIR}/sdkconfig.partitions" in cmake
