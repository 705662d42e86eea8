"""esp32.Partition and friends as firmware sees them, running in MicroPython on the board."""

from __future__ import annotations

import pytest

from tests.emulator.emuhelpers import EMIT, records
from emulator import flashfmt as ff
from emulator.flash import Flash


def test_find_info_and_constructors(board):
    result = board.run(EMIT + """
import esp32
P = esp32.Partition
emit([P.BOOT, P.RUNNING, P.TYPE_APP, P.TYPE_DATA])
emit([p.info() for p in P.find()])
emit([p.info()[4] for p in P.find(P.TYPE_DATA)])
emit([p.info()[4] for p in P.find(type=P.TYPE_DATA, subtype=2)])
emit([p.info()[4] for p in P.find(P.TYPE_APP, label="ota_1")])
emit(P(P.RUNNING).info()[4])
emit(P(P.BOOT).info()[4])
emit(P("vfs").info())
emit(repr(P("nvs")))
emit(err(P, "nope"))
emit(err(P, 7))
emit(err(P, "ota_0", block_size=512))
emit(P("ota_0") == P("ota_0"))
emit(P("ota_0").info() == P(P.RUNNING).info())
emit(P("vfs", 512).ioctl(4, 0))
emit([P("ota_0").ioctl(4, 0), P("ota_0").ioctl(5, 0), P("ota_0").ioctl(1, 0), P("ota_0").ioctl(99, 0)])
import flashbdev
emit([flashbdev.bdev.info(), flashbdev.bdev.ioctl(5, 0)])
""")
    r = records(result)
    assert r[0] == [0, 1, 0, 1]
    assert r[1] == [[0, 0x10, 0x10000, 0x180000, "ota_0", False],
                    [0, 0x11, 0x190000, 0x180000, "ota_1", False]]
    assert r[2] == ["nvs", "otadata", "phy_init", "vfs"]  # vfs: registered at boot, last
    assert r[3] == ["nvs"]
    assert r[4] == ["ota_1"]
    assert r[5] == "ota_0" and r[6] == "ota_0"
    assert r[7] == [1, 0x81, 0x310000, 0xF0000, "vfs", False]
    assert r[8] == ("<Partition type=1, subtype=2, address=36864, size=16384, label=nvs, "
                    "encrypted=0>")
    assert r[9] == ["OSError", 2]
    assert r[10] == ["ValueError"]
    assert r[11][0] == "TypeError"  # the C constructor takes no keyword arguments
    assert r[12] is False  # no __eq__ on the real type either
    assert r[13] is True
    assert r[14] == 0xF0000 // 512
    assert r[15] == [384, 4096, 0, None]
    assert r[16] == [[1, 0x81, 0x310000, 0xF0000, "vfs", False], 4096]
    # flashbdev, frozen in every ESP32 firmware: the vfs partition, 4 KB blocks
    assert "Traceback" not in result.console


def test_read_write_erase_and_nor_semantics(board):
    result = board.run(EMIT + """
import esp32
p = esp32.Partition("vfs")
buf = bytearray(4096)
p.writeblocks(0, bytes([0xA5]) * 4096)          # erases block 0 first
p.readblocks(0, buf); emit(buf[0] == 0xA5 and buf[4095] == 0xA5)
p.writeblocks(0, bytes([0x0F]) * 16, 100)       # no erase: old & new
b = bytearray(20); p.readblocks(0, b, 98); emit(list(b))
p.writeblocks(0, bytes([0x3C]) * 4096)          # with erase again
p.readblocks(0, buf); emit(buf[100] == 0x3C)
p.ioctl(6, 1)                                   # erase block 1
p.writeblocks(1, b"hello", 10)
b = bytearray(7); p.readblocks(1, b, 9); emit(bytes(b).hex())
mv = memoryview(bytearray(8)); p.readblocks(1, mv[2:], 10); emit(bytes(mv).hex())
emit(err(p.readblocks, 240, bytearray(4096)))    # the last block + 1
emit(err(p.readblocks, 239, bytearray(8), 4092))
emit(err(p.writeblocks, 0, b"x" * 100))         # erase of 100 bytes: not a sector multiple
emit(err(p.writeblocks, 240, b"x", 0))
p8 = esp32.Partition("vfs", 512)                  # small blocks: read-modify-erase-write
p8.writeblocks(3, b"\\x11" * 512)
b = bytearray(4096); p.readblocks(0, b)
emit([b[0], b[1535], b[1536], b[2047], b[2048]])
emit(p8.ioctl(6, 0))
""")
    r = records(result)
    assert r[0] is True
    assert r[1] == [0xA5, 0xA5] + [0x05] * 16 + [0xA5, 0xA5]
    assert r[2] is True
    assert r[3] == "ff68656c6c6fff"
    assert r[4] == "000068656c6c6fff"
    assert r[5] == ["OSError", -0x104, "ESP_ERR_INVALID_SIZE"]
    assert r[6] == ["OSError", -0x104, "ESP_ERR_INVALID_SIZE"]
    assert r[7] == ["OSError", -0x104, "ESP_ERR_INVALID_SIZE"]
    assert r[8] == ["OSError", -0x104, "ESP_ERR_INVALID_SIZE"]
    assert r[9] == [0x3C, 0x3C, 0x11, 0x11, 0x3C]
    assert r[10] == -22
    stats = result.flash_stats
    assert stats["unerased_writes"] >= 1
    assert stats["ops"] == stats["sector_erases"] + stats["block_erases"] + stats["writes"]


def test_strict_mode_catches_a_missing_erase(board):
    result = board.run(EMIT + """
import esp32
p = esp32.Partition("vfs")
p.writeblocks(0, b"\\x00" * 4096)
emit(err(p.writeblocks, 0, b"\\xff" * 16, 0))
p.writeblocks(0, b"\\x00" * 16, 16)   # clearing bits only: fine
emit("ok")
""", strict=True)
    r = records(result)
    assert r[0][0] == "OSError" and "unerased" in r[0][2]
    assert r[1] == "ok"


def test_set_boot_refuses_a_bad_image_and_selects_a_good_one(board, v2_image):
    board.write("good.bin", "")
    (board.fs / "good.bin").write_bytes(v2_image)
    bad = bytearray(v2_image)
    bad[len(bad) // 2] ^= 0x01
    (board.fs / "bad.bin").write_bytes(bytes(bad))
    result = board.run(EMIT + """
import esp32
P = esp32.Partition
nxt = P(P.RUNNING).get_next_update()
emit(nxt.info()[4])
emit(nxt.get_next_update().info()[4])
emit(P("nvs").get_next_update().info()[4])
emit(err(nxt.set_boot))                 # empty slot
flash_file(nxt, "bad.bin")
emit(err(nxt.set_boot))                 # flipped bit: the hash fails
emit(err(P("nvs").set_boot))
flash_file(nxt, "good.bin")
emit(err(nxt.set_boot))
emit(P(P.BOOT).info()[4])
emit(P(P.RUNNING).info()[4])
emit(err(nxt.set_boot))                 # again: same slot, same sequence number
""")
    r = records(result)
    assert r[0] == "ota_1" and r[1] == "ota_0" and r[2] == "ota_0"
    validate_failed = ["OSError", -0x1503, "ESP_ERR_OTA_VALIDATE_FAILED"]
    assert r[3] == validate_failed
    assert r[4] == validate_failed
    assert r[5] == validate_failed
    assert r[6] is None
    assert r[7] == "ota_1" and r[8] == "ota_0"
    assert r[9] is None
    entries = Flash(board.flash).otadata()
    # first boot wrote {1, VALID} into otadata[0]; set_boot wrote {2, NEW} into otadata[1]
    assert [(e.seq, e.state) for e in entries] == [(1, ff.OTA_IMG_VALID), (2, ff.OTA_IMG_NEW)]
    assert Flash(board.flash).boot_slot() == "ota_1"


def test_writing_the_running_slot_aborts(board):
    result = board.run(EMIT + """
import esp32, machine
if machine.reset_cause() == machine.PWRON_RESET:
    p = esp32.Partition(esp32.Partition.RUNNING)
    try:
        p.writeblocks(10, b"\\x00" * 4096)
    except:
        emit("swallowed")
emit(machine.reset_cause())
""", max_boots=3)
    r = records(result)
    assert r == [2]  # HARD_RESET, the write never returned
    assert "abort() was called" in result.console
    assert result.exit_reason == "main-returned"
    Flash(board.flash).verify_slot("ota_0")  # untouched


def test_mark_app_valid(board, v2_image):
    (board.fs / "new.bin").write_bytes(v2_image)
    result = board.run(EMIT + """
import esp32, machine, fwinfo
P = esp32.Partition
emit([machine.reset_cause(), fwinfo.VERSION, P(P.RUNNING).info()[4]])
if fwinfo.VERSION == "v1.0.0":
    nxt = P(P.RUNNING).get_next_update()
    flash_file(nxt, "new.bin")
    nxt.set_boot()
    machine.reset()
P.mark_app_valid_cancel_rollback()
P.mark_app_valid_cancel_rollback()    # again: nothing to do
if machine.reset_cause() != machine.SOFT_RESET:
    machine.soft_reset()
""", max_boots=5)
    r = records(result)
    assert r == [[1, "v1.0.0", "ota_0"], [2, "v2.0.0", "ota_1"], [5, "v2.0.0", "ota_1"]]
    entries = Flash(board.flash).otadata()
    assert [(e.seq, e.state) for e in entries] == [(1, ff.OTA_IMG_VALID), (2, ff.OTA_IMG_VALID)]
    assert result.exit_reason == "main-returned"


def test_mark_app_valid_without_otadata_is_esp_fail(board):
    """No valid otadata entry (wiped after the bootloader ran; a soft reset skips the
    bootloader): esp_ota_mark_app_valid_cancel_rollback returns ESP_FAIL."""
    result = board.run(EMIT + """
import esp32, machine
if machine.reset_cause() != machine.SOFT_RESET:
    emit(err(esp32.Partition.mark_app_valid_cancel_rollback))
    esp32.Partition("otadata").ioctl(6, 0)
    esp32.Partition("otadata").ioctl(6, 1)
    machine.soft_reset()
emit(err(esp32.Partition.mark_app_valid_cancel_rollback))
""")
    assert records(result) == [None, ["OSError", 1, "ESP_FAIL"]]


@pytest.mark.parametrize("heap", ["64k", "150k"])
def test_heap_seen_by_the_firmware(board, heap):
    result = board.run(EMIT + """
import gc
gc.collect()
emit(gc.mem_free() + gc.mem_alloc())
emit(gc.mem_free())
""", heapsize=heap)
    total, free = records(result)
    want = int(heap[:-1]) * 1024
    assert want * 0.8 < free < want
