"""One boot of the ESP-IDF second-stage bootloader, with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE.

Follows bootloader_utility.c (bootloader_utility_get_selected_boot_partition and
bootloader_utility_load_boot_image):

1. read the partition table (MD5 checked) and both otadata entries;
2. every entry in PENDING_VERIFY is rewritten as ABORTED (the app it selected had its one
   trial boot and never confirmed itself: rollback);
3. if both entries are unusable (ota_seq 0xFFFFFFFF, INVALID or ABORTED): ota_0 (this layout
   has no factory app); if moreover both are blank or fail their CRC, a successful boot of
   slot i writes otadata[0] = {seq i+1, VALID} ("Set actual ota_seq");
4. otherwise the valid entry (CRC ok, not INVALID/ABORTED) with the highest ota_seq picks slot
   (seq-1) % number_of_slots; if it is NEW it is rewritten as PENDING_VERIFY;
5. the chosen slot's image is verified (esp_image_verify); if it fails, the bootloader tries
   the slots below it, then the slots above it.

Before that, the ROM: it loads the second-stage bootloader from the chip's offset (0x1000 on
the ESP32, 0x0 on the ESP32-S3 and ESP32-C3); a flash with no image header there (laid out
for another chip, or erased) does not boot ("invalid header"). The app image's chip id and
revision are checked against the chip (esp_image_verify -> bootloader_common_check_chip_validity,
bootloader_support/src/bootloader_common_loader.c): an image built for another chip is not
bootable, and the bootloader falls back as for any other image that fails to verify.

otadata is rewritten as ESP-IDF's write_otadata does: erase the entry's own 4 KB sector and
write the 32-byte entry back. Those writes go through NorFlash, so they are counted and can be
cut like the board's own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from emulator import chips
from emulator import flashfmt as ff
from emulator.norflash import NorFlash

FACTORY_INDEX = -1
TEST_APP_INDEX = -2
CHIP_REV_FULL = 301  # an ESP32-D0WD-V3 (v3.1)


class BootError(Exception):
    """Nothing bootable: the real bootloader would reset and try again forever."""


@dataclass
class BootResult:
    label: str
    offset: int
    size: int
    index: int
    reason: str
    app_desc: dict | None
    events: list[str] = field(default_factory=list)


class _DryFlash:
    """Reads a flash file; writes are dropped (for 'which slot would boot')."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()

    def read(self, addr, size):
        return self.data[addr:addr + size]

    def erase_range(self, addr, size):
        pass

    def write(self, addr, data):
        pass

    def close(self):
        pass


def boot(flash_path: str | os.PathLike, *, stats_path: str | None = None, cut_at: int = 0,
         dry_run: bool = False, log=print, chip: str = "esp32") -> BootResult:
    """Run one boot step on a flash file in a board with this chip ("esp32", "esp32s3",
    "esp32c3"). Returns the slot that boots and why.

    Raises BootError if no slot holds a valid image (or the ROM finds no bootloader),
    norflash.PowerCut if the power is cut during an otadata write (cut_at counts flash
    operations of the whole run)."""
    spec = chips.get(chip)
    flash = _DryFlash(flash_path) if dry_run else NorFlash(str(flash_path), stats_path, cut_at)
    try:
        if spec.key != "esp32":
            _rom(flash, spec, log)
        return _boot(flash, log, spec)
    finally:
        flash.close()


def _rom(flash, spec, log) -> None:
    """The ROM's load of the second-stage bootloader: a header must be at the chip's offset
    (the ROM prints "invalid header: 0x..." and retries forever otherwise)."""
    head = bytes(flash.read(spec.bootloader, ff.IMAGE_HEADER_SIZE))
    if head[0] != ff.IMAGE_MAGIC:
        word = int.from_bytes(head[:4], "little")
        if log:
            log(f"E rom: invalid header: 0x{word:08x} at 0x{spec.bootloader:x} (no "
                f"{spec.name} bootloader there)")
        raise BootError(f"no {spec.name} bootloader at 0x{spec.bootloader:x}")


def _say(log, events, level, text):
    events.append(text)
    if log:
        log(f"{level} boot: {text}")


def _boot(flash, log, spec=chips.ESP32) -> BootResult:
    events: list[str] = []
    if spec.key != "esp32":  # the bootloader's first lines name the chip and its revision
        _say(log, events, "I", f"chip revision: {spec.revision()}")
        _say(log, events, "I", f"{spec.name}: SPI flash, console {spec.console}")
    try:
        table = ff.parse_partition_table(flash.read(ff.PARTITION_TABLE_OFFSET,
                                                    ff.PARTITION_TABLE_MAX_LEN))
    except ValueError as e:
        _say(log, events, "E", f"Failed to verify partition table: {e}")
        raise BootError(f"partition table invalid: {e}") from None
    ota: dict[int, ff.PartitionEntry] = {}
    factory = test = otadata_part = None
    for p in table:
        if p.type == ff.TYPE_APP:
            if p.subtype == ff.SUBTYPE_FACTORY:
                factory = p
            elif p.subtype == ff.SUBTYPE_TEST:
                test = p
            elif p.is_ota_app():
                ota[p.subtype & 0x0F] = p
        elif p.type == ff.TYPE_DATA and p.subtype == ff.SUBTYPE_DATA_OTA:
            otadata_part = p
    app_count = len(ota)

    def index_to_partition(index: int):
        if index == FACTORY_INDEX:
            return factory
        if index == TEST_APP_INDEX:
            return test
        if 0 <= index < app_count:
            return ota.get(index)
        return None

    reason = ""
    initial_contents = False
    entries: list[ff.OtaEntry] = []

    def write_otadata(i: int, entry: ff.OtaEntry) -> None:
        addr = otadata_part.offset + i * ff.SECTOR_SIZE
        flash.erase_range(addr, ff.SECTOR_SIZE)
        flash.write(addr, entry.pack())

    if otadata_part is None:
        boot_index = FACTORY_INDEX
        reason = "no otadata partition"
    else:
        entries = [ff.OtaEntry.unpack(flash.read(otadata_part.offset + i * ff.SECTOR_SIZE,
                                                 ff.OTA_SELECT_SIZE)) for i in (0, 1)]
        for i, e in enumerate(entries):
            if e.state == ff.OTA_IMG_PENDING_VERIFY:
                e.state = ff.OTA_IMG_ABORTED
                _say(log, events, "W", f"otadata[{i}] (seq {e.seq}) was never confirmed: "
                     "PENDING_VERIFY -> ABORTED (rollback)")
                write_otadata(i, e)
                reason = "rollback: "
        if (entries[0].invalid() and entries[1].invalid()) or app_count == 0:
            if factory is not None:
                boot_index = FACTORY_INDEX
                reason += "no valid otadata, factory app"
            else:
                boot_index = 0
                reason += "no valid otadata, trying OTA 0"
                if entries[0].unset_or_bad_crc() and entries[1].unset_or_bad_crc():
                    initial_contents = True
        else:
            active = ff.active_otadata(entries)
            if active != -1:
                e = entries[active]
                boot_index = e.slot(app_count)
                reason += f"otadata[{active}] seq {e.seq} ({ff.ota_state_name(e.state)})"
                if e.state == ff.OTA_IMG_NEW:
                    e.state = ff.OTA_IMG_PENDING_VERIFY
                    _say(log, events, "I", f"otadata[{active}] NEW -> PENDING_VERIFY (trial boot)")
                    write_otadata(active, e)
                    reason += " -> PENDING_VERIFY, trial boot"
            else:
                boot_index = FACTORY_INDEX
                reason += "ota data invalid, trying all partitions"
                _say(log, events, "E", "ota data partition invalid and no factory, "
                     "will try all partitions")

    def try_load(index: int):
        part = index_to_partition(index)
        if part is None or part.size == 0:
            return None
        try:
            info = ff.verify_image(lambda off, n: flash.read(part.offset + off, n), part.size,
                                   chip_id=spec.chip_id,
                                   chip_rev_full=CHIP_REV_FULL if spec.key == "esp32" else spec.rev_full,
                                   bootloader=True, chunk=0x10000,
                                   memmap=None if spec.key == "esp32" else chips.memmap(spec))
        except ff.ImageError as err:
            _say(log, events, "E", f"{part.label} (0x{part.offset:x}): {err}")
            return None
        return part, info

    order = list(range(boot_index, FACTORY_INDEX - 1, -1)) + list(range(boot_index + 1, app_count))
    for index in order:
        loaded = try_load(index)
        if loaded is None:
            if index_to_partition(index) is not None:
                _say(log, events, "E", f"OTA app partition slot {index} is not bootable"
                     if index >= 0 else "Factory app partition is not bootable")
            continue
        part, info = loaded
        if index != boot_index:
            reason += f"; slot {boot_index} not bootable, fell back to {part.label}"
        if index > FACTORY_INDEX and initial_contents:
            e = ff.OtaEntry(index + 1, ff.OTA_IMG_VALID)
            write_otadata(0, e)
            _say(log, events, "I", f"Set actual ota_seq={e.seq} in otadata[0]")
        _say(log, events, "I", f"Loaded app from partition at offset 0x{part.offset:x}")
        return BootResult(part.label, part.offset, part.size, index, reason, info["app_desc"],
                          events)
    loaded = try_load(TEST_APP_INDEX)
    if loaded is not None:
        part, info = loaded
        _say(log, events, "W", "Falling back to test app as only bootable partition")
        return BootResult(part.label, part.offset, part.size, TEST_APP_INDEX, reason,
                          info["app_desc"], events)
    _say(log, events, "E", "No bootable app partitions in the partition table")
    raise BootError("no bootable app partition")
