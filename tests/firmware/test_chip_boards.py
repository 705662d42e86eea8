"""The ESP32-S3 and ESP32-C3 boards (firmware/FOTA_ESP32S3, FOTA_ESP32C3): their partition
tables are the emulated boards', they keep rollback, the version in the app descriptor, the
library frozen and ROMFS, and `make firmware BOARD=...` builds each (against the fake
MicroPython tree of test_make_firmware.py)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from emulator import flashfmt as ff
from emulator.flash import MiB, default_partitions
from tests.firmware import test_make_firmware as mf
from tests.firmware.test_partitions import SUBTYPES, TYPES

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
BOARDS = {"FOTA_ESP32S3": ("esp32s3", 8), "FOTA_ESP32C3": ("esp32c3", 4)}
# MicroPython's chip defaults the boards list (ports/esp32/boards/mpconfigboard_esp32*_common.cmake)
CHIP_DEFAULTS = {"boards/sdkconfig.spiram_quad": "CONFIG_SPIRAM=y\n",
                 "boards/sdkconfig.riscv": "CONFIG_ESP_SYSTEM_PMP_IDRAM_SPLIT=n\n",
                 "boards/sdkconfig.c3": "CONFIG_ESP32C3_REV_MIN_3=y\n"}


def table(board: str) -> list[ff.PartitionEntry]:
    import csv

    lines = [ln for ln in (FIRMWARE / board / "partitions.csv").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    rows = []
    for row in csv.reader(lines):
        name, ptype, sub, offset, size = (c.strip() for c in row[:5])
        subtype = SUBTYPES[sub] if sub in SUBTYPES else int(sub, 0)
        rows.append(ff.PartitionEntry(name, TYPES[ptype], subtype, int(offset, 0), int(size, 0)))
    return rows


def key(p: ff.PartitionEntry) -> tuple:
    return (p.label, p.type, p.subtype, p.offset, p.size)


@pytest.mark.parametrize("board", list(BOARDS))
def test_table_is_the_emulated_boards_and_fits(board):
    chip, mb = BOARDS[board]
    rows = table(board)
    ff.pack_partition_table(rows)
    assert [key(p) for p in rows] == [key(p) for p in default_partitions(mb * MiB, romfs=True, chip=chip)]
    assert max(p.offset + p.size for p in rows) < mb * MiB
    slots = [p.size for p in rows if p.is_ota_app()]
    assert slots == ([0x270000] * 2 if mb == 8 else [0x180000] * 2)


@pytest.mark.parametrize("board", list(BOARDS))
def test_board_keeps_rollback_version_library_and_romfs(board):
    d = FIRMWARE / board
    chip = BOARDS[board][0]
    cmake = (d / "mpconfigboard.cmake").read_text()
    assert f"set(IDF_TARGET {chip})" in cmake
    for f in ("sdkconfig.fota", "sdkconfig.version", "sdkconfig.partitions", "sdkconfig.board"):
        assert "${MICROPY_BOARD_DIR}/" + f in cmake
    assert "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y" in (d / "sdkconfig.fota").read_text()
    assert "CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=n" in (d / "sdkconfig.fota").read_text()
    assert 'freeze("../../lib")' in (d / "manifest.py").read_text()
    assert re.search(r"^#define MICROPY_VFS_ROM \(1\)$", (d / "mpconfigboard.h").read_text(), re.M)
    assert '"flash_offset": "0"' in (d / "board.json").read_text()


@pytest.mark.parametrize("board", list(BOARDS))
def test_make_firmware_builds_each_board(tree, board):
    repo, mpy = tree
    port = mpy / "ports" / "esp32"
    for rel, text in CHIP_DEFAULTS.items():
        (port / rel).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(mf.ROOT / "tests" / "cli"),
                                                      str(mf.ROOT / "tools")]))
    env.pop("MAKEFLAGS", None)
    r = subprocess.run(["make", "-C", str(repo), "firmware", f"MPY_DIR={mpy}", "VERSION=1.2.3",
                        f"BOARD={board}"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    build = port / f"build-{board}"
    assert mf.inspect_image((build / "micropython.bin").read_bytes()).version == "1.2.3"
    cfg = (build / "sdkconfig").read_text()
    assert f'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="{repo / "firmware" / board / "partitions.csv"}"' in cfg
    assert not (port / "build-FOTA_ESP32").exists()


def test_make_firmware_refuses_an_unknown_board(tree):
    repo, mpy = tree
    r = subprocess.run(["make", "-C", str(repo), "firmware", f"MPY_DIR={mpy}", "VERSION=1.2.3",
                        "BOARD=ESP32_GENERIC"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no board ESP32_GENERIC in firmware/" in r.stdout + r.stderr


tree = mf.tree
