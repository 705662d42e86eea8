"""Flash files laid out like MicroPython's ESP32_GENERIC OTA build, and an inspector.

Layout (MicroPython ports/esp32/partitions-4MiB-ota.csv):

    0x1000   bootloader (placeholder image area, 0x7000)
    0x8000   partition table
    nvs      data nvs   0x9000   0x4000
    otadata  data ota   0xd000   0x2000   (erased: both entries 0xFF)
    phy_init data phy   0xf000   0x1000
    ota_0    app  ota_0 0x10000  0x180000
    ota_1    app  ota_1 0x190000 0x180000
    vfs      data fat   0x310000 rest of the chip (4 MB: 0xf0000)

With romfs=True the table is this project's board (firmware/FOTA_ESP32/partitions.csv): the
same, plus

    romfs    data 0x8f  0x310000 0x40000  (two 128 KB application slots, see README)
    vfs      at 0x350000, the rest (4 MB: 0xb0000)

Another chip (create_flash(chip=...), emulator/chips.py): the ESP32-S3 and ESP32-C3 have their
bootloader at 0x0 (esptool targets/*.py BOOTLOADER_FLASH_OFFSET) and the same 4 MB table; an
ESP32-S3 of 8 or 16 MB has MicroPython's partitions-8MiBplus-ota.csv (ota_0 0x10000 and ota_1
0x280000, 0x270000 each) and this project's romfs partition after ota_1 (0x4f0000, 0x40000):
firmware/FOTA_ESP32S3/partitions-8MiBplus.csv.

Since MicroPython 1.26 the CSV has no vfs row: the firmware registers "vfs" at boot over
the space after the last partition (main.c). create_flash() does the same by default
(vfs_subtype=None); give a subtype (fat 0x81, littlefs 0x83) to put a vfs row in the table.
"""

from __future__ import annotations

import os
from pathlib import Path

from emulator import chips
from emulator import flashfmt as ff
from emulator.flashfs import FlashFS, FlashFSError

MiB = 1024 * 1024
BOOTLOADER_OFFSET = 0x1000
OTADATA_OFFSET = 0xD000
OTA_0_OFFSET = 0x10000
OTA_1_OFFSET = 0x190000
SLOT_SIZE = 0x180000
VFS_OFFSET = 0x310000
ROMFS_OFFSET = 0x310000
ROMFS_SIZE = 0x40000
ROMFS_SLOTS = 2
# MicroPython's partitions-8MiBplus-ota.csv, for chips with 8 MB of flash or more
BIG_SLOT_SIZE = 0x270000
BIG_OTA_1_OFFSET = 0x280000
BIG_ROMFS_OFFSET = 0x4F0000


def slot_layout(flash_size: int = 4 * MiB, chip: str = "esp32") -> tuple[int, int]:
    """(ota_1 offset, slot size) of a chip with this much flash: MicroPython's
    partitions-4MiB-ota.csv, or on an ESP32-S3 of 8 MB or more its partitions-8MiBplus-ota.csv
    (the ESP32's layout is the 4 MB one whatever the flash, as it always was here)."""
    if chips.get(chip).key != "esp32" and flash_size >= 8 * MiB:
        return BIG_OTA_1_OFFSET, BIG_SLOT_SIZE
    return OTA_1_OFFSET, SLOT_SIZE


def default_partitions(flash_size: int = 4 * MiB, vfs_subtype: int | None = None,
                       romfs: bool = False, chip: str = "esp32") -> list[ff.PartitionEntry]:
    """The partition table: MicroPython's 4MiB-ota layout (8MiBplus-ota on a chip other than
    the ESP32 with 8 MB or more), or with romfs=True this project's board (a "romfs"
    partition between ota_1 and the vfs)."""
    ota_1, slot = slot_layout(flash_size, chip)
    romfs_offset = ota_1 + slot
    vfs_offset = romfs_offset + ROMFS_SIZE if romfs else ota_1 + slot
    if flash_size <= vfs_offset or flash_size % ff.SECTOR_SIZE:
        raise ValueError(f"flash size {flash_size:#x} too small or not sector aligned")
    parts = [
        ff.PartitionEntry("nvs", ff.TYPE_DATA, ff.SUBTYPE_DATA_NVS, 0x9000, 0x4000),
        ff.PartitionEntry("otadata", ff.TYPE_DATA, ff.SUBTYPE_DATA_OTA, OTADATA_OFFSET, 0x2000),
        ff.PartitionEntry("phy_init", ff.TYPE_DATA, ff.SUBTYPE_DATA_PHY, 0xF000, 0x1000),
        ff.PartitionEntry("ota_0", ff.TYPE_APP, ff.SUBTYPE_OTA_0, OTA_0_OFFSET, slot),
        ff.PartitionEntry("ota_1", ff.TYPE_APP, ff.SUBTYPE_OTA_0 + 1, ota_1, slot),
    ]
    if romfs:
        parts.append(ff.PartitionEntry(ff.ROMFS_LABEL, ff.TYPE_DATA, ff.SUBTYPE_DATA_ROMFS,
                                       romfs_offset, ROMFS_SIZE))
    if vfs_subtype is not None:
        parts.append(ff.PartitionEntry("vfs", ff.TYPE_DATA, vfs_subtype, vfs_offset,
                                       flash_size - vfs_offset))
    return parts


FLASH_SIZE_CODES = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}  # esptool's header byte 3, high nibble (MB)


def _bootloader_placeholder(chip: str = "esp32", flash_size: int = 4 * MiB) -> bytes:
    """A small stand-in for the second-stage bootloader at the chip's bootloader offset
    (header only, with the chip's id and, on the newer chips, the flash size: the emulator's
    bootloader is bootloader.py)."""
    spec = chips.get(chip)
    if spec.key == "esp32":
        return ff.pack_image_header(0, 0x40080400, hash_appended=0)
    return ff.pack_image_header(0, spec.iram + 0x400, chip_id=spec.chip_id, hash_appended=0,
                                spi_size=FLASH_SIZE_CODES.get(flash_size // MiB, 2),
                                min_rev_full=spec.min_rev_full, max_rev_full=spec.max_rev_full)


def merged_image(app: bytes, parts: list[ff.PartitionEntry] | None = None,
                 chip: str = "esp32") -> bytes:
    """A full flash image as MicroPython's ports/esp32/makeimg.py writes firmware.bin, to be
    written at the chip's bootloader offset (0x1000 on the ESP32, 0x0 on the ESP32-S3 and
    ESP32-C3: board.json's flash_offset): the bootloader, 0xFF up to the partition table
    (0x8000 on the flash), 0xFF up to the first app partition, the app. Default table: this
    project's board (default_partitions(romfs=True, chip=chip))."""
    spec = chips.get(chip)
    parts = default_partitions(romfs=True, chip=chip) if parts is None else parts
    first = next(p for p in parts if p.type == ff.TYPE_APP)
    if len(app) > first.size:
        raise ValueError(f"app image is {len(app)} bytes, {first.label} holds {first.size}")
    out = bytearray(b"\xff" * (first.offset - spec.bootloader))
    size = 4 * MiB  # the flash size the bootloader's header says: what the table needs
    while size < max(p.offset + p.size for p in parts):
        size *= 2
    boot = _bootloader_placeholder(chip, size)
    out[:len(boot)] = boot
    table = ff.pack_partition_table(parts)
    at = ff.PARTITION_TABLE_OFFSET - spec.bootloader
    out[at:at + len(table)] = table
    return bytes(out) + app


def create_flash(path: str | os.PathLike, app: bytes, size: int = 4 * MiB, *,
                 ota_1: bytes | None = None, vfs_subtype: int | None = None,
                 romfs: bool = False, romfs_slots: dict[int, bytes] | None = None,
                 chip: str = "esp32") -> Path:
    """Write a fresh flash file: everything erased (0xFF), bootloader placeholder,
    partition table, otadata erased, `app` in ota_0 (and `ota_1` in ota_1 if given).
    romfs=True: this project's table with a "romfs" partition; romfs_slots puts ROMFS images
    in its slots ({0: image}), as `mpremote romfs deploy` or a factory flash would.
    chip: "esp32", "esp32s3" or "esp32c3": where the bootloader goes and, with the flash
    size, which table (see the module's text)."""
    spec = chips.get(chip)
    if spec.key != "esp32" and size not in [mb * MiB for mb in spec.flash_mb]:
        raise ValueError(f"an emulated {spec.name} has "
                         + " or ".join(f"{mb} MB" for mb in sorted(spec.flash_mb))
                         + f" of flash, not {size / MiB:g} MB")
    parts = default_partitions(size, vfs_subtype, romfs, chip)
    ota_1_offset, slot_size = slot_layout(size, chip)
    if romfs_slots and not romfs:
        raise ValueError("romfs_slots needs romfs=True")
    for label, image in (("ota_0", app), ("ota_1", ota_1)):
        if image is not None and len(image) > slot_size:
            raise ValueError(f"{label} image is {len(image)} bytes, slot holds {slot_size}")
    data = bytearray(b"\xff" * size)
    boot = _bootloader_placeholder(chip, size)
    data[spec.bootloader:spec.bootloader + len(boot)] = boot
    table = ff.pack_partition_table(parts)
    data[ff.PARTITION_TABLE_OFFSET:ff.PARTITION_TABLE_OFFSET + len(table)] = table
    data[OTA_0_OFFSET:OTA_0_OFFSET + len(app)] = app
    if ota_1 is not None:
        data[ota_1_offset:ota_1_offset + len(ota_1)] = ota_1
    for index, image in (romfs_slots or {}).items():
        start, size_ = romfs_slot_span(index, ota_1_offset + slot_size)
        if len(image) > size_:
            raise ValueError(f"ROMFS image is {len(image)} bytes, slot {index} holds {size_}")
        data[start:start + len(image)] = image
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(bytes(data))
    tmp.replace(path)
    return path


def deploy_romfs(path: str | os.PathLike, image: bytes) -> None:
    """What `mpremote romfs deploy IMAGE` does to the board (tools/mpremote/mpremote/
    commands.py, _do_romfs_deploy): it checks the ROMFS header and the size against the whole
    "romfs" partition (not a slot: an image over 128 KB runs into slot 1), erases the 4 KB
    blocks the image covers and writes it from the partition's start in 4 KB chunks, the last
    one padded with zeros. ValueError for what mpremote refuses. A host write: no counted
    flash operations."""
    flash = Flash(path)
    part = flash.partition(ff.ROMFS_LABEL)
    if image[:3] != ff.ROMFS_MAGIC:
        raise ValueError("Invalid ROMFS image")
    if len(image) > part.size:
        raise ValueError("ROMFS image is too big for the target partition")
    erased = -(-len(image) // ff.SECTOR_SIZE) * ff.SECTOR_SIZE
    with open(path, "r+b") as f:
        f.seek(part.offset)
        f.write(image + bytes(erased - len(image)))


def romfs_slot_span(index: int, part_offset: int = ROMFS_OFFSET,
                    part_size: int = ROMFS_SIZE) -> tuple[int, int]:
    """(flash offset, size) of ROMFS slot `index`: the partition's halves."""
    if not 0 <= index < ROMFS_SLOTS:
        raise ValueError(f"ROMFS slot {index} out of range 0..{ROMFS_SLOTS - 1}")
    size = part_size // ROMFS_SLOTS
    return part_offset + index * size, size


class Flash:
    """Read-only view of a flash file: partitions, otadata, slot images, the files of the
    filesystem in the vfs partition (tests and tools)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.data = self.path.read_bytes()

    def reload(self) -> None:
        self.data = self.path.read_bytes()

    def read(self, addr: int, size: int) -> bytes:
        return self.data[addr:addr + size]

    def partitions(self, runtime: bool = True) -> list[ff.PartitionEntry]:
        """The partition table; with runtime=True plus the "vfs" partition that MicroPython
        registers at boot when the table has none."""
        table = ff.parse_partition_table(
            self.read(ff.PARTITION_TABLE_OFFSET, ff.PARTITION_TABLE_MAX_LEN))
        return ff.with_runtime_vfs(table, len(self.data)) if runtime else table

    def partition(self, label: str) -> ff.PartitionEntry:
        for p in self.partitions():
            if p.label == label:
                return p
        raise KeyError(f"no partition labelled {label!r}")

    def app_slots(self) -> list[ff.PartitionEntry]:
        slots = [p for p in self.partitions() if p.is_ota_app()]
        return sorted(slots, key=lambda p: p.subtype)

    def otadata_partition(self) -> ff.PartitionEntry:
        for p in self.partitions():
            if p.type == ff.TYPE_DATA and p.subtype == ff.SUBTYPE_DATA_OTA:
                return p
        raise KeyError("no otadata partition")

    def otadata(self) -> list[ff.OtaEntry]:
        base = self.otadata_partition().offset
        return [ff.OtaEntry.unpack(self.read(base + i * ff.SECTOR_SIZE, ff.OTA_SELECT_SIZE))
                for i in (0, 1)]

    def slot_bytes(self, label: str) -> bytes:
        p = self.partition(label)
        return self.read(p.offset, p.size)

    def verify_slot(self, label: str, bootloader: bool = False) -> dict:
        """esp_image_verify on a slot; raises flashfmt.ImageError."""
        p = self.partition(label)
        return ff.verify_image(lambda off, n: self.read(p.offset + off, n), p.size,
                               bootloader=bootloader)

    def app_desc(self, label: str) -> dict | None:
        """The app descriptor in a slot, or None if the slot holds no app image."""
        p = self.partition(label)
        head = self.read(p.offset, ff.APP_DESC_OFFSET + ff.APP_DESC_SIZE)
        if head[0] != ff.IMAGE_MAGIC:
            return None
        return ff.parse_app_desc(head[ff.APP_DESC_OFFSET:])

    def slot_image(self, label: str) -> bytes:
        """The image bytes of a slot, cut at the verified image length."""
        info = self.verify_slot(label)
        return self.slot_bytes(label)[:info["image_len"]]

    def romfs_slot(self, index: int) -> bytes:
        """The bytes of ROMFS slot `index` (KeyError without a "romfs" partition)."""
        p = self.partition(ff.ROMFS_LABEL)
        start, size = romfs_slot_span(index, p.offset, p.size)
        return self.read(start, size)

    def filesystem(self) -> FlashFS:
        """The littlefs filesystem of the vfs partition (FlashFSError if there is none)."""
        return FlashFS(self.path)

    def files(self) -> list[str]:
        """Every file on the flash filesystem, as paths relative to / ("lib/fota.py")."""
        return self.filesystem().files()

    def read_file(self, path: str) -> bytes:
        """A file's bytes from the flash filesystem (FlashFSError if it is not there)."""
        return self.filesystem().read_file(path)

    def has_file(self, path: str) -> bool:
        fs = self.filesystem()
        return fs.mounted and fs.exists(path) and not fs.is_dir(path)

    def chip(self) -> str:
        """The chip this flash is laid out for, from its bootloader: the header at 0x0 names
        it (ESP32-S3, ESP32-C3), else the ESP32 (whose bootloader is at 0x1000)."""
        head = self.read(0, ff.IMAGE_HEADER_SIZE)
        if head[0] == ff.IMAGE_MAGIC:
            found = chips.by_id(ff.parse_image_header(head)["chip_id"])
            if found is not None:
                return found.key
        return "esp32"

    def boot_slot(self) -> str:
        """The label of the slot the bootloader would boot now (no write is made), on the chip
        the flash is laid out for."""
        from emulator.bootloader import boot
        return boot(self.path, dry_run=True, log=None, chip=self.chip()).label

    def summary(self) -> dict:
        """Partitions, otadata and slot versions as plain data (for `info --json`)."""
        out: dict = {"path": str(self.path), "size": len(self.data), "partitions": [],
                     "otadata": [], "slots": {}}
        in_table = {p.label for p in self.partitions(runtime=False)}
        for p in self.partitions():
            out["partitions"].append({"label": p.label, "type": p.type, "subtype": p.subtype,
                                      "offset": p.offset, "size": p.size,
                                      "encrypted": p.encrypted,
                                      "in_table": p.label in in_table})
        try:
            out["otadata"] = [e.to_dict() for e in self.otadata()]
        except KeyError:
            pass
        for p in self.app_slots():
            entry: dict = {"offset": p.offset, "app_desc": self.app_desc(p.label)}
            try:
                info = self.verify_slot(p.label)
                entry["valid"] = True
                entry["image_len"] = info["image_len"]
                entry["sha256"] = info["sha256"]
            except ff.ImageError as e:
                entry["valid"] = False
                entry["error"] = str(e)
            out["slots"][p.label] = entry
        try:
            out["boot_slot"] = self.boot_slot()
        except Exception as e:  # no bootable app: say so instead of failing
            out["boot_slot"] = None
            out["boot_error"] = str(e)
        out["filesystem"] = self.filesystem_summary()
        out["romfs"] = self.romfs_summary()
        return out

    def romfs_summary(self) -> list[dict]:
        """Each ROMFS slot: offset, size, and the length of the ROMFS image it holds (None:
        erased or not an image). Empty without a "romfs" partition."""
        try:
            part = self.partition(ff.ROMFS_LABEL)
        except KeyError:
            return []
        out = []
        for index in range(ROMFS_SLOTS):
            start, size = romfs_slot_span(index, part.offset, part.size)
            out.append({"slot": index, "offset": start, "size": size,
                        "image": ff.romfs_image_length(self.read(start, 16))})
        return out

    def filesystem_summary(self) -> dict:
        """The vfs partition's filesystem: littlefs (with its file count and used blocks),
        erased (the first boot formats it) or unknown (the board would refuse it)."""
        try:
            fs = self.filesystem()
        except FlashFSError as e:
            return {"state": "none", "error": str(e)}
        info: dict = {"offset": fs.part.offset, "size": fs.part.size}
        if fs.mounted:
            info.update(state="littlefs", files=len(fs.files()),
                        used_blocks=fs.fs.used_block_count, blocks=fs.fs.block_count)
        else:
            info["state"] = "erased" if fs.blank else "unknown"
        return info
