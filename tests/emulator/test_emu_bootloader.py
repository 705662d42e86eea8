"""The bootloader step against every otadata situation that matters (one sweep)."""

from __future__ import annotations

import pytest

from emulator import bootloader
from emulator import flashfmt as ff
from emulator.flash import OTA_1_OFFSET, OTA_0_OFFSET, OTADATA_OFFSET, Flash, create_flash
from emulator.norflash import PowerCut, read_stats

NEW, PV, VALID, INVALID, ABORTED = (ff.OTA_IMG_NEW, ff.OTA_IMG_PENDING_VERIFY,
                                    ff.OTA_IMG_VALID, ff.OTA_IMG_INVALID, ff.OTA_IMG_ABORTED)
BAD_CRC = "bad-crc"


def entry_bytes(spec) -> bytes:
    """None = erased sector; (seq, state) or (seq, state, BAD_CRC)."""
    if spec is None:
        return b"\xff" * ff.SECTOR_SIZE
    seq, state = spec[:2]
    e = ff.OtaEntry(seq, state)
    if len(spec) > 2:
        e.crc ^= 0x1
    return e.pack() + b"\xff" * (ff.SECTOR_SIZE - ff.OTA_SELECT_SIZE)


def make_flash(tmp_path, v1_image, v2_image, otadata, corrupt=()):
    path = create_flash(tmp_path / "flash.bin", v1_image, ota_1=v2_image)
    data = bytearray(path.read_bytes())
    for i, spec in enumerate(otadata):
        off = OTADATA_OFFSET + i * ff.SECTOR_SIZE
        data[off:off + ff.SECTOR_SIZE] = entry_bytes(spec)
    for slot in corrupt:
        base = OTA_0_OFFSET if slot == 0 else OTA_1_OFFSET
        data[base + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def state_of(entry: ff.OtaEntry):
    if entry.seq == ff.SEQ_UNSET and entry.state == ff.OTA_IMG_UNDEFINED:
        return None
    return (entry.seq, entry.state) if entry.crc_ok() else (entry.seq, entry.state, BAD_CRC)


CASES = [
    # id, otadata before, corrupt slots, booted slot, otadata after
    ("blank", [None, None], (), "ota_0", [(1, VALID), None]),
    ("valid-0", [(1, VALID), None], (), "ota_0", [(1, VALID), None]),
    ("new-1", [(1, VALID), (2, NEW)], (), "ota_1", [(1, VALID), (2, PV)]),
    ("pending-1-rollback", [(1, VALID), (2, PV)], (), "ota_0", [(1, VALID), (2, ABORTED)]),
    ("valid-1", [(1, VALID), (2, VALID)], (), "ota_1", [(1, VALID), (2, VALID)]),
    ("invalid-1", [(1, VALID), (2, INVALID)], (), "ota_0", [(1, VALID), (2, INVALID)]),
    ("aborted-1", [(1, VALID), (2, ABORTED)], (), "ota_0", [(1, VALID), (2, ABORTED)]),
    ("bad-crc-1", [(1, VALID), (2, NEW, BAD_CRC)], (), "ota_0", [(1, VALID), (2, NEW, BAD_CRC)]),
    ("new-1-only", [None, (2, NEW)], (), "ota_1", [None, (2, PV)]),
    ("higher-seq-wins", [(3, VALID), (2, VALID)], (), "ota_0", [(3, VALID), (2, VALID)]),
    ("seq-wraps-slots", [(4, NEW), (3, VALID)], (), "ota_1", [(4, PV), (3, VALID)]),
    ("undefined-state", [(1, ff.OTA_IMG_UNDEFINED), None], (), "ota_0",
     [(1, ff.OTA_IMG_UNDEFINED), None]),
    ("new-1-bad-image", [(1, VALID), (2, NEW)], (1,), "ota_0", [(1, VALID), (2, PV)]),
    ("valid-0-bad-image", [(1, VALID), None], (0,), "ota_1", [(1, VALID), None]),
    ("both-pending", [(1, PV), (2, PV)], (), "ota_0", [(1, ABORTED), (2, ABORTED)]),
    ("first-trial-no-fallback", [(1, PV), None], (), "ota_0", [(1, ABORTED), None]),
    ("blank-bad-ota0", [None, None], (0,), "ota_1", [(2, VALID), None]),
    # CRC-invalid entries are "not invalid" (bootloader_common_ota_select_invalid ignores the
    # CRC) but not valid either: no active entry, the bootloader tries every slot from ota_0
    # and leaves otadata alone
    ("all-bad-crc", [(1, VALID, BAD_CRC), (2, VALID, BAD_CRC)], (), "ota_0",
     [(1, VALID, BAD_CRC), (2, VALID, BAD_CRC)]),
    ("bad-crc-blank-ota0-bad", [(1, VALID, BAD_CRC), None], (0,), "ota_1",
     [(1, VALID, BAD_CRC), None]),
]


@pytest.mark.parametrize("before, corrupt, slot, after", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_boot_step(tmp_path, v1_image, v2_image, before, corrupt, slot, after):
    path = make_flash(tmp_path, v1_image, v2_image, before, corrupt)
    old = Flash(path)
    predicted = old.boot_slot()  # dry run: no write
    assert Flash(path).data == old.data
    lines: list[str] = []
    result = bootloader.boot(path, stats_path=str(tmp_path / "stats"), log=lines.append)
    assert result.label == slot == predicted
    assert lines[-1] == f"I boot: Loaded app from partition at offset 0x{result.offset:x}"
    new = Flash(path)
    got = [state_of(e) for e in new.otadata()]
    assert got == after
    # an entry is rewritten as ESP-IDF does: its own sector erased, 32 bytes written; the
    # other sector is left alone
    for i in (0, 1):
        off = OTADATA_OFFSET + i * ff.SECTOR_SIZE
        sector = new.read(off, ff.SECTOR_SIZE)
        if got[i] != state_of(old.otadata()[i]):
            assert sector[ff.OTA_SELECT_SIZE:] == b"\xff" * (ff.SECTOR_SIZE - ff.OTA_SELECT_SIZE)
        else:
            assert sector == old.read(off, ff.SECTOR_SIZE)
    # two flash operations (erase + write) per rewritten entry
    changed = sum(1 for i in (0, 1) if got[i] != state_of(old.otadata()[i]))
    stats = read_stats(tmp_path / "stats")
    assert stats["ops"] == 2 * changed
    assert stats["sector_erases"] == changed
    assert stats["time_us"] >= changed * 45000


def test_nothing_bootable(tmp_path, v1_image, v2_image):
    path = make_flash(tmp_path, v1_image, v2_image, [(1, VALID), (2, NEW)], corrupt=(0, 1))
    lines: list[str] = []
    with pytest.raises(bootloader.BootError):
        bootloader.boot(path, log=lines.append)
    assert "No bootable app partitions" in lines[-1]


def test_bad_partition_table(tmp_path, v1_image):
    path = create_flash(tmp_path / "flash.bin", v1_image)
    data = bytearray(path.read_bytes())
    data[0x8000 + 12] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(bootloader.BootError, match="partition table"):
        bootloader.boot(path, log=None)


@pytest.mark.parametrize("cut", [1, 2])
def test_power_cut_during_otadata_update(tmp_path, v1_image, v2_image, cut):
    """Cut during the NEW -> PENDING_VERIFY rewrite: op 1 is the sector erase, op 2 the write.
    Half of the operation happens; the next boot copes with what is left."""
    path = make_flash(tmp_path, v1_image, v2_image, [(1, VALID), (2, NEW)])
    stats = str(tmp_path / "stats")
    with pytest.raises(PowerCut):
        bootloader.boot(path, stats_path=stats, cut_at=cut, log=None)
    sector = Flash(path).read(OTADATA_OFFSET + ff.SECTOR_SIZE, ff.SECTOR_SIZE)
    if cut == 1:
        # first half of the sector erased, the rest untouched (already 0xFF past the entry)
        assert sector[:ff.SECTOR_SIZE // 2] == b"\xff" * (ff.SECTOR_SIZE // 2)
    else:
        # the first 16 bytes of the entry programmed, the CRC half still erased
        assert sector[:4] == b"\x02\x00\x00\x00" and sector[16:32] == b"\xff" * 16
    assert read_stats(stats)["cuts"] == 1
    # the next boot: the damaged entry is unusable, ota_0 (VALID) boots
    assert bootloader.boot(path, stats_path=stats, log=None).label == "ota_0"
