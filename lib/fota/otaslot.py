# OTA app slots: what runs, where the next image goes, and a writer for it.
#
# The writer has the shape of ESP-IDF's esp_https_ota: open a slot, feed it chunks, then
# finish (check size, MD5 and the app image header) or abort. Each 4 KB sector is first
# compared with what the slot holds: a sector that already holds these bytes (a retry, a
# resumed download, the same image again) is neither erased nor written; any other is erased,
# written and read back before the next one: erased as the data comes, never the whole slot
# in one call, which would starve a watchdog for seconds. The MD5 is computed over data the
# flash was shown to hold, so it speaks for the flash, not only for the network. A writer can
# start at a sector boundary past 0 (resume): it first hashes what the slot already holds.

import binascii
import hashlib
import struct

from esp32 import Partition

SECTOR = 4096
CHECK = 2048  # read-back is compared in pieces of this size (two per sector: one Python loop turn per 2 KB)
APP_DESC_MAGIC = 0xABCD5432
# esp_ota_img_states_t, as kept in otadata
OTA_NEW, OTA_PENDING_VERIFY, OTA_VALID, OTA_INVALID, OTA_ABORTED = 0, 1, 2, 3, 4
OTA_UNDEFINED = 0xFFFFFFFF


class SlotError(Exception):
    pass


class ImageRefused(SlotError):
    # The image's header says it cannot run here: refused from its first sector.
    pass


def chip_id(head=None):
    # The chip id (esp_image_header_t.chip_id, offset 12: esp_app_format.h, ESP32 0, ESP32-S3
    # 9, ESP32-C3 5) of an image header, or of the running image: the chip this board is,
    # since the bootloader boots no image of another chip (bootloader_support's
    # bootloader_common_check_chip_validity). MicroPython has no call that returns it;
    # sys.implementation._machine names the MCU too, but in a board-defined string.
    if head is None:
        head = bytearray(16)
        running().readblocks(0, head)
    return struct.unpack_from("<H", head, 12)[0]


def check_head(head, buf):
    # A firmware image's first sector, before any flash operation: an app image (magic
    # 0xE9) must be for this chip, as esp_https_ota_perform checks the header before its first
    # write (esp_ota_verify_chip_id). buf: a scratch buffer of 16+ bytes. The minimum chip
    # revision is left to set_boot's esp_image_verify, as in ESP-IDF: MicroPython cannot
    # read the chip's revision.
    if head[0] != 0xE9:
        return  # not an app image at all: finish() says so once the MD5 is known
    running().readblocks(0, buf)
    chip = chip_id(head)
    if chip != chip_id(buf):
        raise ImageRefused("image is for chip id %d, not this chip" % chip)


def slots():
    # The OTA app partitions, ota_0 first.
    ps = Partition.find(Partition.TYPE_APP)
    ps = [p for p in ps if 0x10 <= p.info()[1] <= 0x1F]
    ps.sort(key=lambda p: p.info()[1])
    return ps


def same(a, b):
    return a.info()[2] == b.info()[2]


def slot_index(part):
    return part.info()[1] - 0x10


def running():
    return Partition(Partition.RUNNING)


def app_desc(part):
    # esp_app_desc_t of the image in a slot: (version, project, secure_version) or None.
    buf = bytearray(112)
    part.readblocks(0, buf)
    return parse_app_desc(buf)


def parse_app_desc(head):
    # head: the first 112+ bytes of an app image.
    if len(head) < 112 or head[0] != 0xE9:
        return None
    magic, secure = struct.unpack_from("<II", head, 32)
    if magic != APP_DESC_MAGIC:
        return None
    return _cstr(head[48:80]), _cstr(head[80:112]), secure


def _cstr(b):
    b = bytes(b)
    i = b.find(b"\0")
    b = b if i < 0 else b[:i]
    try:
        return b.decode()
    except UnicodeError:  # a damaged descriptor must not stop the firmware that reads it
        return repr(b)


def ota_state(part):
    # The otadata state of the entry that boots `part`, or None if no entry points at it.
    # ESP-IDF keeps two 32-byte esp_ota_select_entry_t, one per sector; the valid one with the
    # highest sequence number is in force, and slot = (seq - 1) % number of slots.
    data = Partition.find(Partition.TYPE_DATA, 0)  # subtype 0: ota
    if not data:
        return None
    n = len(slots())
    want = slot_index(part)
    buf = bytearray(32)
    best = None
    for sector in (0, 1):
        data[0].readblocks(sector, buf)
        seq = struct.unpack_from("<I", buf, 0)[0]
        state, crc = struct.unpack_from("<II", buf, 24)
        if seq == 0xFFFFFFFF or crc != _crc32_seq(seq):
            continue
        if best is None or seq > best[0]:
            best = (seq, state)
    if best is None or (best[0] - 1) % n != want:
        return None
    return best[1]


def _crc32_seq(seq):
    return binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF)


def invalidate(part):
    # Make a slot unbootable: erase its first sector (the image header). Never the running slot.
    if same(part, running()):
        raise SlotError("refusing to write the running slot")
    part.ioctl(6, 0)


class SlotWriter:
    FIRMWARE = True  # an app image for this chip: checked from its first sector
    def __init__(self, part, size, start=0, sha256=False):
        # part: target Partition; size: image length; start: bytes already in the slot
        # (a multiple of SECTOR) that a resumed download skips; sha256: also hash the image
        # with SHA-256 (for a signature check), as self.sha.
        if same(part, running()):
            raise SlotError("refusing to write the running slot")
        cap = part.ioctl(4, 0) * SECTOR
        if size <= 0 or size > cap:
            raise SlotError("image of %d bytes does not fit the %d-byte slot" % (size, cap))
        if start % SECTOR or start > size:
            raise SlotError("resume offset %d is not a sector boundary" % start)
        self.part = part
        self.size = size
        self.buf = bytearray(SECTOR)
        self.check = bytearray(CHECK)
        self.fill = 0  # bytes waiting in buf
        self.touched = start > 0  # the slot may hold part of the new image
        self.sector = start // SECTOR  # next sector to write
        self.md5 = hashlib.md5()
        self.sha = hashlib.sha256() if sha256 else None
        for s in range(self.sector):  # resuming: hash what is already there
            for off in range(0, SECTOR, CHECK):
                part.readblocks(s, self.check, off)
                self._hash(self.check)

    @property
    def written(self):
        return self.sector * SECTOR + self.fill

    def restart(self):
        # Drop a partly filled sector; returns the offset to go on from.
        self.fill = 0
        return self.sector * SECTOR

    def feed_from(self, stream):
        # Read from stream (readinto) into the sector buffer; write full sectors.
        # Returns bytes read, 0 at the end of the stream.
        if self.fill == SECTOR:
            self._flush()
        want = min(SECTOR - self.fill, self.size - self.written)
        if want <= 0:
            return 0
        n = stream.readinto(memoryview(self.buf)[self.fill:self.fill + want])
        self.fill += n
        if self.fill == SECTOR:
            self._flush()
        return n

    def _flush(self):
        if not self.fill:
            return
        mv = memoryview(self.buf)
        i = self.fill
        if i < SECTOR:  # last, short sector: pad like erased flash, doubling the 0xFF run
            mv[i] = 0xFF
            k = 1
            while i + k < SECTOR:
                c = min(k, SECTOR - i - k)
                mv[i + k:i + k + c] = mv[i:i + c]
                k += c
        if self.sector == 0 and self.FIRMWARE:
            check_head(mv, self.check)
        if not self._holds(mv):  # else the sector holds these bytes already: no erase, no write
            self.touched = True
            self.part.writeblocks(self.sector, self.buf)  # erases the sector first
            if not self._holds(mv):
                raise SlotError("flash read-back differs in sector %d" % self.sector)
        n = min(self.fill, self.size - self.sector * SECTOR)
        self._hash(mv[:n])  # what the flash was just shown to hold
        self.sector += 1
        self.fill = 0

    def _holds(self, mv):
        # Does the current sector hold mv? Read in pieces into the small check buffer.
        for off in range(0, SECTOR, CHECK):
            self.part.readblocks(self.sector, self.check, off)
            if self.check != mv[off:off + CHECK]:
                return False
        return True

    def _hash(self, data):
        self.md5.update(data)
        if self.sha:
            self.sha.update(data)

    def finish(self, md5_hex):
        # Write what is left, then check size, MD5 (unless None) and the app image header.
        # Returns the new image's (version, project, secure_version).
        self.finish_data(md5_hex)
        head = memoryview(self.buf)[:112]
        self.part.readblocks(0, head)
        desc = parse_app_desc(head)
        if desc is None:
            raise SlotError("not an ESP32 app image")
        return desc  # its chip id was checked in its first sector (check_head)

    def finish_data(self, md5_hex):
        # Write what is left, then check size and MD5 (unless None): any image, not only apps.
        self._flush()
        got = self.sector * SECTOR
        if got < self.size:
            raise SlotError("short image: %d of %d bytes" % (got, self.size))
        digest = binascii.hexlify(self.md5.digest()).decode()
        if md5_hex is not None and digest != md5_hex.lower():
            raise SlotError("MD5 mismatch: image %s, document %s" % (digest, md5_hex))

    def abort(self):
        # After a failure: if any sector of the new image may be in the slot (written now, or
        # by the earlier boot a resumed download goes on from), erase the first sector (the
        # image header), so the slot never holds a bootable mix of two images. If nothing was
        # written, the slot keeps its previous image, byte for byte: the bootloader can still
        # fall back to it.
        if self.touched:
            invalidate(self.part)
