"""The flash of a board that last ran stock MicroPython: what `fota flash` meets on a used board.

Two stock builds, as micropython.org ships them for 4 MB boards (MicroPython 1.26+, whose
tables have no vfs row: ports/esp32/main.c registers "vfs" from the end of the last partition
to the end of the flash):

    generic  ESP32_GENERIC, partitions-4MiBplus.csv: nvs 0x9000+0x6000, phy_init
             0xf000+0x1000, factory app 0x10000+0x1f0000; the filesystem at 0x200000 (2 MB)
    ota      ESP32_GENERIC-OTA, partitions-4MiB-ota.csv: nvs, otadata 0xd000, phy_init,
             ota_0 0x10000 and ota_1 0x190000 (0x180000 each); the filesystem at 0x310000
             (960 KB). Both slots hold a stock app and otadata starts ota_1 (the board took
             an update once)

The filesystem is littlefs, made as the board's first boot makes it (inisetup.py: the
default boot.py), with the user's files in it and a data log that grew until littlefs had
written the blocks at `reach` (flash addresses): by default where this project's table
(firmware/FOTA_ESP32/partitions.csv) puts its romfs partition (0x310000) and its filesystem
(0x350000). So those places hold old littlefs blocks, as on a board that was used a while.
"""

from __future__ import annotations

import os
from pathlib import Path

from emulator import flashfmt as ff
from emulator.flash import MiB, _bootloader_placeholder
from emulator.flashfs import BLOCK_SIZE, DEFAULT_BOOT_PY, FlashFS, FlashFSError
from emulator.image import build_app_image

STOCK_VERSION = "v1.26.1"
FOTA_ROMFS, FOTA_VFS = 0x310000, 0x350000  # firmware/FOTA_ESP32/partitions.csv
VARIANTS = ("generic", "ota")

USER_FILES = {
    "boot.py": DEFAULT_BOOT_PY,
    "main.py": ("# the board's old application: log a reading at every boot\n"
                "with open('log.csv', 'a') as f:\n"
                "    f.write('boot,1\\n')\n"
                "print('old main.py: logged')\n"),
    "lib/sensor.py": "def read():\n    return 21.5\n",
    "wifi.json": '{"ssid": "home", "password": "hunter2"}\n',
}


def stock_partitions(variant: str) -> list[ff.PartitionEntry]:
    """The partition table of a stock 4 MB build (MicroPython's ports/esp32/*.csv)."""
    nvs, ota, phy = ff.SUBTYPE_DATA_NVS, ff.SUBTYPE_DATA_OTA, ff.SUBTYPE_DATA_PHY
    if variant == "generic":
        return [ff.PartitionEntry("nvs", ff.TYPE_DATA, nvs, 0x9000, 0x6000),
                ff.PartitionEntry("phy_init", ff.TYPE_DATA, phy, 0xF000, 0x1000),
                ff.PartitionEntry("factory", ff.TYPE_APP, ff.SUBTYPE_FACTORY, 0x10000, 0x1F0000)]
    if variant == "ota":
        return [ff.PartitionEntry("nvs", ff.TYPE_DATA, nvs, 0x9000, 0x4000),
                ff.PartitionEntry("otadata", ff.TYPE_DATA, ota, 0xD000, 0x2000),
                ff.PartitionEntry("phy_init", ff.TYPE_DATA, phy, 0xF000, 0x1000),
                ff.PartitionEntry("ota_0", ff.TYPE_APP, ff.SUBTYPE_OTA_0, 0x10000, 0x180000),
                ff.PartitionEntry("ota_1", ff.TYPE_APP, ff.SUBTYPE_OTA_0 + 1, 0x190000,
                                  0x180000)]
    raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")


def create_used_flash(path: str | os.PathLike, variant: str = "generic", *,
                      files: dict[str, str | bytes] | None = None,
                      reach: tuple[int, ...] = (FOTA_ROMFS, FOTA_VFS),
                      log_line: bytes = b"2026-03-01T12:00:00Z,21.5,48.2\n") -> dict:
    """Write the flash of a used stock board (see the module's text). `files` replace the
    user's files; `reach`: flash addresses (inside the old filesystem) whose block the data
    log must have written. -> what it made: variant, filesystem offset and size, files,
    log size."""
    parts = stock_partitions(variant)
    size = 4 * MiB
    data = bytearray(b"\xff" * size)
    boot = _bootloader_placeholder()
    data[0x1000:0x1000 + len(boot)] = boot
    table = ff.pack_partition_table(parts)
    data[ff.PARTITION_TABLE_OFFSET:ff.PARTITION_TABLE_OFFSET + len(table)] = table
    apps = [p for p in parts if p.type == ff.TYPE_APP]
    for i, p in enumerate(apps):  # another stock build in each slot
        image = build_app_image(f"{STOCK_VERSION}" if i == len(apps) - 1 else "v1.25.0")
        data[p.offset:p.offset + len(image)] = image
    if variant == "ota":  # it took an update: otadata starts ota_1
        for i, seq in enumerate((1, 2)):
            entry = ff.OtaEntry(seq, ff.OTA_IMG_VALID).pack()
            data[0xD000 + i * 0x1000:0xD000 + i * 0x1000 + len(entry)] = entry
    path = Path(path)
    path.write_bytes(bytes(data))
    fs = FlashFS(path)
    old = fs.part.offset
    for addr in reach:
        if not old <= addr < old + fs.part.size:
            raise ValueError(f"{addr:#x} is outside the old filesystem ({old:#x}+"
                             f"{fs.part.size:#x})")
    fs.format()
    for name, body in (USER_FILES if files is None else files).items():
        fs.write_file(name, body.encode() if isinstance(body, str) else body)
    buf = fs._ctx.buffer
    blocks = [(addr - old) // BLOCK_SIZE * BLOCK_SIZE for addr in reach]
    chunk = log_line * (8192 // len(log_line))
    with fs.fs.open("log.csv", "wb"):
        pass
    logged = 0
    while any(buf[b:b + BLOCK_SIZE] == b"\xff" * BLOCK_SIZE for b in blocks):
        try:
            with fs.fs.open("log.csv", "ab") as f:
                f.write(chunk)
        except Exception as e:  # littlefs: no space left
            raise FlashFSError(f"the old filesystem filled up before the data log reached "
                               f"{', '.join(hex(a) for a in reach)} ({e})") from None
        logged += len(chunk)
    fs.save()
    return {"variant": variant, "vfs": (old, fs.part.size), "files": fs.files(),
            "log_bytes": logged}
