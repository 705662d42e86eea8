"""Byte layouts of an ESP32 flash: partition table, otadata, app image, app descriptor.

This module runs unchanged under CPython and MicroPython (the emulated board imports it),
so it sticks to struct, hashlib and binascii and to plain classes.

Sources the layouts follow (ESP-IDF and esptool):
- partition table: components/partition_table/gen_esp32part.py and esp_flash_partitions.h
  (32-byte entries, magic 0xAA50, an MD5 entry 0xEBEB + 14 x 0xFF + MD5 of the entries).
- otadata: esp_ota_select_entry_t (bootloader_support/include/esp_flash_partitions.h):
  ota_seq u32, seq_label[20], ota_state u32, crc u32, where
  crc = esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4) == binascii.crc32(pack("<I", seq), 0xFFFFFFFF).
- app image: esp_image_format.h / esp_image_format.c (24-byte header, 8-byte segment
  headers, XOR checksum seeded 0xEF padded so that it ends on a 16-byte boundary, then the
  SHA-256 of everything before it when hash_appended is 1).
- esp_app_desc_t: esp_app_format/include/esp_app_desc.h (256 bytes at image offset 32).
"""

import binascii
import hashlib
import struct

SECTOR_SIZE = 0x1000
MMU_PAGE_SIZE = 0x10000

# ---------------------------------------------------------------- partition table
PARTITION_TABLE_OFFSET = 0x8000
PARTITION_TABLE_MAX_LEN = 0xC00
PARTITION_MAGIC = 0x50AA  # bytes AA 50, little endian
PARTITION_MD5_MAGIC = 0xEBEB
PARTITION_ENTRY_FMT = "<HBBII16sI"
PARTITION_ENTRY_SIZE = 32

TYPE_APP = 0x00
TYPE_DATA = 0x01
SUBTYPE_FACTORY = 0x00
SUBTYPE_OTA_0 = 0x10
SUBTYPE_OTA_MAX = 0x20  # ota_0 .. ota_15 are 0x10 .. 0x1F
SUBTYPE_TEST = 0x20
SUBTYPE_ANY = 0xFF
SUBTYPE_DATA_OTA = 0x00
SUBTYPE_DATA_PHY = 0x01
SUBTYPE_DATA_NVS = 0x02
SUBTYPE_DATA_FAT = 0x81
SUBTYPE_DATA_SPIFFS = 0x82
SUBTYPE_DATA_LITTLEFS = 0x83
# ROMFS: MicroPython's ESP32 port finds it by label (esp32_partition.c, mp_vfs_rom_ioctl:
# esp_partition_find(DATA, ANY, "romfs")); its CSV gives it subtype 0x8f
# (ports/esp32/partitions-4MiB-romfs.csv)
SUBTYPE_DATA_ROMFS = 0x8F
ROMFS_LABEL = "romfs"
FLAG_ENCRYPTED = 0x1


ROMFS_MAGIC = b"\xd2\xcd\x31"  # extmod/vfs_rom.c: the image's header record kind


def romfs_image_length(head):
    """The length of the ROMFS image that `head` (its first bytes) starts, header included,
    or None if it is not one: the header kind, then the payload length as a varuint."""
    if bytes(head[:3]) != ROMFS_MAGIC:
        return None
    n, pos = 0, 3
    while pos < len(head):
        b = head[pos]
        pos += 1
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            return pos + n
    return None


class PartitionEntry:
    """One row of the partition table."""

    def __init__(self, label, type, subtype, offset, size, flags=0):
        self.label = label
        self.type = type
        self.subtype = subtype
        self.offset = offset
        self.size = size
        self.flags = flags

    @property
    def encrypted(self):
        return bool(self.flags & FLAG_ENCRYPTED)

    def is_ota_app(self):
        return self.type == TYPE_APP and SUBTYPE_OTA_0 <= self.subtype < SUBTYPE_OTA_MAX

    def __repr__(self):
        return "PartitionEntry(%r, type=%d, subtype=0x%02x, offset=0x%x, size=0x%x)" % (
            self.label, self.type, self.subtype, self.offset, self.size)


def pack_partition_table(entries):
    """Binary partition table (PARTITION_TABLE_MAX_LEN bytes) for PartitionEntry rows.

    Checks what gen_esp32part.py checks: unique labels up to 16 bytes, app partitions
    aligned to 64 KB, others to 4 KB, and no overlaps."""
    rows = []
    labels = {}
    for e in entries:
        name = e.label.encode() if isinstance(e.label, str) else bytes(e.label)
        if not name or len(name) > 16:
            raise ValueError("partition label must be 1..16 bytes: %r" % (e.label,))
        if name in labels:
            raise ValueError("duplicate partition label %r" % (e.label,))
        labels[name] = 1
        align = MMU_PAGE_SIZE if e.type == TYPE_APP else SECTOR_SIZE
        if e.offset % align:
            raise ValueError("partition %s offset 0x%x not aligned to 0x%x" % (e.label, e.offset, align))
        if e.size <= 0 or e.size % SECTOR_SIZE:
            raise ValueError("partition %s size 0x%x not a multiple of 0x1000" % (e.label, e.size))
        if e.offset < PARTITION_TABLE_OFFSET + SECTOR_SIZE:
            raise ValueError("partition %s overlaps the partition table" % (e.label,))
        rows.append(struct.pack(PARTITION_ENTRY_FMT, PARTITION_MAGIC, e.type, e.subtype,
                                e.offset, e.size, name + b"\x00" * (16 - len(name)), e.flags))
    spans = sorted((e.offset, e.offset + e.size, e.label) for e in entries)
    for i in range(1, len(spans)):
        if spans[i][0] < spans[i - 1][1]:
            raise ValueError("partitions %s and %s overlap" % (spans[i - 1][2], spans[i][2]))
    body = b"".join(rows)
    md5 = hashlib.md5(body).digest()
    table = body + struct.pack("<H", PARTITION_MD5_MAGIC) + b"\xff" * 14 + md5
    if len(table) > PARTITION_TABLE_MAX_LEN - PARTITION_ENTRY_SIZE:
        raise ValueError("too many partitions")
    return table + b"\xff" * (PARTITION_TABLE_MAX_LEN - len(table))


def parse_partition_table(data):
    """List of PartitionEntry from the bytes at 0x8000; ValueError if the table is invalid.

    Like esp_partition_table_verify: every entry must carry the magic until the MD5 entry
    or an erased (0xFFFF) entry, and the MD5, when present, must match."""
    entries = []
    pos = 0
    n = len(data) - PARTITION_ENTRY_SIZE + 1
    while pos < n:
        magic = struct.unpack_from("<H", data, pos)[0]
        if magic == 0xFFFF:
            break
        if magic == PARTITION_MD5_MAGIC:
            want = bytes(data[pos + 16:pos + 32])
            got = hashlib.md5(bytes(data[:pos])).digest()
            if want != got:
                raise ValueError("partition table MD5 mismatch")
            break
        if magic != PARTITION_MAGIC:
            raise ValueError("partition table entry %d has bad magic 0x%04x" % (pos // 32, magic))
        _, ptype, subtype, offset, size, label, flags = struct.unpack_from(PARTITION_ENTRY_FMT, data, pos)
        label = bytes(label)
        end = label.find(b"\x00")
        if end >= 0:
            label = label[:end]
        entries.append(PartitionEntry(label.decode(), ptype, subtype, offset, size, flags))
        pos += PARTITION_ENTRY_SIZE
    if not entries:
        raise ValueError("partition table is empty (nothing flashed at 0x8000?)")
    return entries


def with_runtime_vfs(entries, flash_size):
    """The partitions a running MicroPython (1.26+) sees: if the table has no "vfs" or
    "ffat" data partition, main.c registers a "vfs" (data, fat) partition from the end of
    the last partition to the end of the flash (esp_partition_register_external)."""
    for e in entries:
        if e.type == TYPE_DATA and e.label in ("vfs", "ffat"):
            return list(entries)
    end = 0
    for e in entries:
        end = max(end, e.offset + e.size)
    if 0 < end < flash_size:
        return list(entries) + [PartitionEntry("vfs", TYPE_DATA, SUBTYPE_DATA_FAT, end, flash_size - end)]
    return list(entries)


# ---------------------------------------------------------------- otadata
OTA_SELECT_FMT = "<I20sII"
OTA_SELECT_SIZE = 32
SEQ_UNSET = 0xFFFFFFFF

OTA_IMG_NEW = 0x0
OTA_IMG_PENDING_VERIFY = 0x1
OTA_IMG_VALID = 0x2
OTA_IMG_INVALID = 0x3
OTA_IMG_ABORTED = 0x4
OTA_IMG_UNDEFINED = 0xFFFFFFFF

OTA_STATE_NAMES = {
    OTA_IMG_NEW: "NEW",
    OTA_IMG_PENDING_VERIFY: "PENDING_VERIFY",
    OTA_IMG_VALID: "VALID",
    OTA_IMG_INVALID: "INVALID",
    OTA_IMG_ABORTED: "ABORTED",
    OTA_IMG_UNDEFINED: "UNDEFINED",
}


def ota_state_name(state):
    return OTA_STATE_NAMES.get(state, "0x%08x" % state)


def ota_seq_crc(seq):
    """bootloader_common_ota_select_crc: esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)."""
    return binascii.crc32(struct.pack("<I", seq), 0xFFFFFFFF) & 0xFFFFFFFF


class OtaEntry:
    """esp_ota_select_entry_t, as read from the start of one otadata sector."""

    def __init__(self, seq, state, crc=None, label=b"\xff" * 20):
        self.seq = seq
        self.state = state
        self.crc = ota_seq_crc(seq) if crc is None else crc
        self.label = label

    @classmethod
    def unpack(cls, data):
        seq, label, state, crc = struct.unpack_from(OTA_SELECT_FMT, data, 0)
        return cls(seq, state, crc, bytes(label))

    def pack(self):
        return struct.pack(OTA_SELECT_FMT, self.seq, self.label, self.state, self.crc)

    def crc_ok(self):
        return self.crc == ota_seq_crc(self.seq)

    def invalid(self):
        """bootloader_common_ota_select_invalid (note: does not look at the CRC)."""
        return self.seq == SEQ_UNSET or self.state in (OTA_IMG_INVALID, OTA_IMG_ABORTED)

    def valid(self):
        """bootloader_common_ota_select_valid."""
        return not self.invalid() and self.crc_ok()

    def unset_or_bad_crc(self):
        return self.seq == SEQ_UNSET or not self.crc_ok()

    def slot(self, app_count):
        return (self.seq - 1) % app_count

    def to_dict(self):
        return {"seq": self.seq, "state": ota_state_name(self.state), "crc": self.crc,
                "crc_ok": self.crc_ok(), "valid": self.valid()}

    def __repr__(self):
        return "OtaEntry(seq=%d, state=%s, crc_ok=%s)" % (self.seq, ota_state_name(self.state), self.crc_ok())


def select_otadata(entries, valid, use_max=True):
    """bootloader_common_select_otadata: index of the entry with the highest (or lowest)
    ota_seq among those marked valid, or -1."""
    if valid[0] and valid[1]:
        a, b = entries[0].seq, entries[1].seq
        pick = max(a, b) if use_max else min(a, b)
        return 0 if pick == a else 1
    for i in (0, 1):
        if valid[i]:
            return i
    return -1


def active_otadata(entries):
    """bootloader_common_get_active_otadata: the entry the running app counts as current."""
    return select_otadata(entries, [entries[0].valid(), entries[1].valid()], True)


def seq_for_slot(current_seq, slot, app_count):
    """compute_ota_seq_for_target_slot (esp_ota_ops.c): the smallest seq >= current_seq that
    maps to slot."""
    base = (slot + 1) % app_count
    i = 0
    while current_seq > base + i * app_count:
        i += 1
    return base + i * app_count


# ---------------------------------------------------------------- app image
IMAGE_MAGIC = 0xE9
IMAGE_HEADER_FMT = "<BBBBIBBBBHBHH4sB"
IMAGE_HEADER_SIZE = 24
SEGMENT_HEADER_SIZE = 8
MAX_SEGMENTS = 16
CHECKSUM_SEED = 0xEF
HASH_LEN = 32
CHIP_ID_ESP32 = 0

# ESP32 memory map (soc/esp32/include/soc/soc.h)
IROM_LOW, IROM_HIGH = 0x400D0000, 0x40400000
DROM_LOW, DROM_HIGH = 0x3F400000, 0x3F800000
_LOAD_REGIONS = (
    (0x3FFAE000, 0x40000000),  # DRAM
    (0x40070000, 0x400C0000),  # IRAM
    (0x400C0000, 0x400C2000),  # RTC fast (instruction bus)
    (0x3FF80000, 0x3FF82000),  # RTC fast (data bus)
    (0x50000000, 0x50002000),  # RTC slow
)

APP_DESC_MAGIC = 0xABCD5432
APP_DESC_FMT = "<II8s32s32s16s16s32s32sHHB3s72s"
APP_DESC_SIZE = 256
APP_DESC_OFFSET = IMAGE_HEADER_SIZE + SEGMENT_HEADER_SIZE  # 32


def pack_image_header(segment_count, entry_addr, chip_id=CHIP_ID_ESP32, hash_appended=1,
                      spi_mode=2, spi_speed=0, spi_size=2, min_rev=0, min_rev_full=0,
                      max_rev_full=399, wp_pin=0xEE):
    """esp_image_header_t. spi_size 2 = 4MB, spi_speed 0 = 40MHz, spi_mode 2 = DIO."""
    return struct.pack(IMAGE_HEADER_FMT, IMAGE_MAGIC, segment_count, spi_mode,
                       (spi_size << 4) | (spi_speed & 0xF), entry_addr, wp_pin, 0, 0, 0,
                       chip_id, min_rev, min_rev_full, max_rev_full, b"\x00" * 4, hash_appended)


def parse_image_header(data):
    (magic, count, spi_mode, spi_sz, entry, wp, d0, d1, d2, chip_id, min_rev, min_rev_full,
     max_rev_full, _res, hash_appended) = struct.unpack_from(IMAGE_HEADER_FMT, data, 0)
    return {"magic": magic, "segment_count": count, "spi_mode": spi_mode,
            "spi_size": spi_sz >> 4, "spi_speed": spi_sz & 0xF, "entry_addr": entry,
            "chip_id": chip_id, "min_chip_rev": min_rev, "min_chip_rev_full": min_rev_full,
            "max_chip_rev_full": max_rev_full, "hash_appended": hash_appended}


def _cstr(raw):
    raw = bytes(raw)
    end = raw.find(b"\x00")
    if end >= 0:
        raw = raw[:end]
    return raw.decode("utf-8", "replace") if hasattr(raw, "decode") else str(raw)


def _fixed(text, n):
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) >= n:
        # ESP-IDF copies with strncpy into char[n]: a full-length string has no NUL.
        return raw[:n]
    return raw + b"\x00" * (n - len(raw))


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def build_date_time(year, month, day, hour, minute, second):
    """The app descriptor's `date` and `time` as the compiler's __DATE__ ("Nov  9 2026": the
    day padded with a space) and __TIME__ ("hh:mm:ss") write them."""
    return ("%s %2d %04d" % (MONTHS[month - 1], day, year),
            "%02d:%02d:%02d" % (hour, minute, second))


def parse_build_date_time(date, time):
    """(year, month, day, hour, minute, second) of an app descriptor's date and time, or None
    when they are not __DATE__ / __TIME__ text."""
    d = date.split()
    t = time.split(":")
    try:
        out = (int(d[2]), MONTHS.index(d[0]) + 1, int(d[1]), int(t[0]), int(t[1]), int(t[2]))
    except (ValueError, IndexError):
        return None
    if len(d) != 3 or len(t) != 3 or not (1 <= out[2] <= 31 and out[3] < 24 and out[4] < 60
                                          and out[5] < 61):
        return None
    return out


def pack_app_desc(version, project_name, time="00:00:00", date="Jan  1 2026",
                  idf_ver="v5.5.1", secure_version=0, app_elf_sha256=b"\x00" * 32,
                  mmu_page_size=16):
    """esp_app_desc_t (256 bytes). mmu_page_size is log2 of the page size (16 = 64 KB)."""
    if len(app_elf_sha256) != 32:
        raise ValueError("app_elf_sha256 must be 32 bytes")
    return struct.pack(APP_DESC_FMT, APP_DESC_MAGIC, secure_version, b"\x00" * 8,
                       _fixed(version, 32), _fixed(project_name, 32), _fixed(time, 16),
                       _fixed(date, 16), _fixed(idf_ver, 32), bytes(app_elf_sha256),
                       0, 99, mmu_page_size, b"\x00" * 3, b"\x00" * 72)


def parse_app_desc(data):
    """dict of an esp_app_desc_t, or None if the magic word is absent."""
    if len(data) < APP_DESC_SIZE:
        return None
    (magic, secure_version, _r1, version, project, time, date, idf_ver, elf_sha,
     min_efuse, max_efuse, mmu, _r3, _r2) = struct.unpack_from(APP_DESC_FMT, data, 0)
    if magic != APP_DESC_MAGIC:
        return None
    return {"secure_version": secure_version, "version": _cstr(version),
            "project_name": _cstr(project), "time": _cstr(time), "date": _cstr(date),
            "idf_ver": _cstr(idf_ver), "app_elf_sha256": binascii.hexlify(bytes(elf_sha)).decode(),
            "min_efuse_blk_rev_full": min_efuse, "max_efuse_blk_rev_full": max_efuse,
            "mmu_page_size": mmu}


def should_map(addr, memmap=None):
    """memmap: (irom, drom, load regions) of the chip (emulator/chips.py); default the ESP32's."""
    irom, drom = (memmap[0], memmap[1]) if memmap else ((IROM_LOW, IROM_HIGH), (DROM_LOW, DROM_HIGH))
    return irom[0] <= addr < irom[1] or drom[0] <= addr < drom[1]


def load_address_ok(addr, length, memmap=None):
    """verify_load_addresses (bootloader only), simplified to the chip's RAM regions."""
    if length == 0:
        return True
    end = addr + length
    for low, high in (memmap[2] if memmap else _LOAD_REGIONS):
        if low <= addr and end <= high:
            return True
    return False


def xor32(data):
    """XOR of the little-endian 32-bit words of data (len a multiple of 4), fast on both
    interpreters: fold one big integer in halves."""
    n = len(data)
    if n == 0:
        return 0
    words = n // 4
    width = 1
    while width < words:
        width *= 2
    x = int.from_bytes(bytes(data), "little")
    bits = width * 32
    while bits > 32:
        bits //= 2
        x = (x >> bits) ^ (x & ((1 << bits) - 1))
    return x


class ImageError(Exception):
    """The app image does not verify; the message says why, as ESP-IDF logs it."""


def verify_image(read, part_size, chip_id=CHIP_ID_ESP32, chip_rev_full=301, bootloader=False,
                 chunk=4096, memmap=None):
    """Verify an app image the way esp_image_verify() does and return its metadata.

    read(offset, n) returns n bytes of the partition from offset (offset relative to the
    partition start). Raises ImageError with the reason on any failure: bad magic, wrong
    chip or revision, too many segments, misaligned mapped segment, bad segment length,
    bad load address (bootloader=True only), image longer than the partition, checksum
    or SHA-256 mismatch. memmap: the chip's (irom, drom, load regions), default the ESP32's.
    The chip and revision checks are bootloader_common_check_chip_validity's
    (bootloader_support/src/bootloader_common_loader.c), which esp_image_verify runs on the
    header (esp_image_format.c, verify_image_header) in the bootloader and in
    esp_ota_set_boot_partition alike."""
    if part_size < IMAGE_HEADER_SIZE:
        raise ImageError("partition too small")
    header = bytes(read(0, IMAGE_HEADER_SIZE))
    h = parse_image_header(header)
    if h["magic"] != IMAGE_MAGIC:
        raise ImageError("image has invalid magic byte (nothing flashed here?)")
    if h["chip_id"] != chip_id:
        raise ImageError("mismatch chip ID, expected %d, found %d" % (chip_id, h["chip_id"]))
    if chip_rev_full < h["min_chip_rev_full"]:
        raise ImageError("Image requires chip rev >= v%d.%d" % (h["min_chip_rev_full"] // 100,
                                                                 h["min_chip_rev_full"] % 100))
    max_rev = h["max_chip_rev_full"]
    if max_rev not in (0, 0xFFFF) and chip_rev_full > max_rev:
        raise ImageError("Image requires chip rev <= v%d.%d" % (max_rev // 100, max_rev % 100))
    if h["segment_count"] > MAX_SEGMENTS:
        raise ImageError("segment count %d exceeds max %d" % (h["segment_count"], MAX_SEGMENTS))
    sha = hashlib.sha256(header) if h["hash_appended"] else None
    checksum = CHECKSUM_SEED
    pos = IMAGE_HEADER_SIZE
    segments = []
    app_desc = None
    for index in range(h["segment_count"]):
        if pos + SEGMENT_HEADER_SIZE > part_size:
            raise ImageError("segment %d header beyond the partition" % index)
        seg_hdr = bytes(read(pos, SEGMENT_HEADER_SIZE))
        load_addr, length = struct.unpack("<II", seg_hdr)
        if sha:
            sha.update(seg_hdr)
        data_off = pos + SEGMENT_HEADER_SIZE
        if length % 4 or length >= 0x1000000:
            raise ImageError("invalid segment length 0x%x" % length)
        mapped = should_map(load_addr, memmap)
        if mapped and (data_off % MMU_PAGE_SIZE) != (load_addr % MMU_PAGE_SIZE):
            raise ImageError("Segment %d load address 0x%08x, doesn't match data 0x%08x"
                             % (index, load_addr, data_off))
        if (bootloader and not mapped and load_addr >= 0x10000000
                and not load_address_ok(load_addr, length, memmap)):
            raise ImageError("Segment %d 0x%08x-0x%08x invalid: bad load address range"
                             % (index, load_addr, load_addr + length))
        if data_off + length > part_size:
            raise ImageError("Image length doesn't fit in partition length %d" % part_size)
        done = 0
        while done < length:
            n = min(chunk, length - done)
            block = read(data_off + done, n)
            if index == 0 and done == 0:
                app_desc = parse_app_desc(bytes(block[:APP_DESC_SIZE]))
            checksum ^= xor32(block)
            if sha:
                sha.update(block)
            done += n
        segments.append((load_addr, length, data_off))
        pos = data_off + length
    unpadded = pos
    padded = (unpadded + 1 + 15) & ~15
    if padded > part_size:
        raise ImageError("Image length %d doesn't fit in partition length %d" % (padded, part_size))
    tail = bytes(read(unpadded, padded - unpadded))
    calc = (checksum ^ (checksum >> 8) ^ (checksum >> 16) ^ (checksum >> 24)) & 0xFF
    if tail[-1] != calc:
        raise ImageError("Checksum failed. Calculated 0x%x read 0x%x" % (calc, tail[-1]))
    if sha:
        sha.update(tail)
    image_len = padded
    digest = None
    if h["hash_appended"]:
        if image_len + HASH_LEN > part_size:
            raise ImageError("Image length %d doesn't fit in partition length %d"
                             % (image_len + HASH_LEN, part_size))
        digest = bytes(read(image_len, HASH_LEN))
        image_len += HASH_LEN
        if sha.digest() != digest:
            raise ImageError("Image hash failed - image is corrupt")
    return {"header": h, "segments": segments, "image_len": image_len, "app_desc": app_desc,
            "sha256": binascii.hexlify(digest).decode() if digest else None}


def verify_image_bytes(image, part_size=None, **kw):
    """verify_image over an in-memory image (CPython helper)."""
    size = len(image) if part_size is None else part_size

    def read(off, n):
        if off + n > len(image):
            return bytes(image[off:]) + b"\xff" * (off + n - len(image))
        return image[off:off + n]

    return verify_image(read, size, **kw)
