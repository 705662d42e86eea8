"""Build and read ESP32 app images (the .bin that goes into an OTA slot).

`build_app_image` makes a real ESP-IDF app image, as esptool's elf2image would lay it out:
header + extended header, segment 0 in DROM starting with esp_app_desc_t, a DROM segment
that carries the firmware's frozen Python modules (the "payload"), small DRAM and IRAM
segments, optional IROM filler to reach a requested size, the 0xEF-seeded XOR checksum
padded to 16 bytes and the appended SHA-256. esptool's `image-info` accepts it and shows the
app descriptor's version.

The payload segment starts with PAYLOAD_MAGIC, a u32 length, a u32 CRC-32 of the JSON, then
a JSON object {filename: source}. The emulator's runner extracts it to the folder that plays
the role of MicroPython's frozen modules.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
import random
import struct

from emulator import chips
from emulator import flashfmt as ff

PAYLOAD_MAGIC = b"MPYFROZ1"
DROM_BASE = ff.DROM_LOW
IROM_BASE = ff.IROM_LOW
DRAM_ADDR = 0x3FFB0000
IRAM_ADDR = 0x40080000
ENTRY_ADDR = IRAM_ADDR + 0x404
DEFAULT_IDF_VER = "v5.5.1"
# The build time images get unless told otherwise: when this module was loaded (UTC), so that
# images built by one process with the same arguments are identical, and never in the future.
LOADED_AT = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _mapped_addr(base: int, data_offset: int, above: int) -> int:
    """A load address in a flash-mapped region whose offset within a 64 KB MMU page matches
    the segment's data offset in the image (esp_image_format.c verify_segment_header), at or
    above `above`."""
    page = max(base, above - above % ff.MMU_PAGE_SIZE)
    addr = page + data_offset % ff.MMU_PAGE_SIZE
    if addr < above:
        addr += ff.MMU_PAGE_SIZE
    return addr


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def pack_payload(payload: dict[str, str]) -> bytes:
    """The payload segment's data for a {filename: source} mapping."""
    for name, source in payload.items():
        if not isinstance(name, str) or not isinstance(source, str):
            raise TypeError("payload must map str filenames to str sources")
        parts = name.split("/")
        if not name or name.startswith("/") or ".." in parts or "" in parts or "\\" in name:
            raise ValueError(f"payload filename must be a relative path: {name!r}")
    blob = json.dumps(payload, sort_keys=True).encode()
    return _pad4(PAYLOAD_MAGIC + struct.pack("<II", len(blob), binascii.crc32(blob)) + blob)


def build_app_image(version: str, *, project: str = "micropython",
                    payload: dict[str, str] | None = None, size: int | None = None,
                    secure_version: int = 0, chip_id: int = 0, idf_ver: str = DEFAULT_IDF_VER,
                    built: dt.datetime | None = None, date: str | None = None,
                    time: str | None = None, chip: str | None = None) -> bytes:
    """A complete ESP32 app image (hash_appended=1) for `version`.

    chip: "esp32" (default), "esp32s3" or "esp32c3" (emulator/chips.py): the chip id, the
    revision range that chip's ESP-IDF build writes into the header, and its memory map.
    chip_id alone (with chip None) writes another chip id into an ESP32 image, for tests.
    built: the build time written into the app descriptor's `date` and `time` (as __DATE__
    and __TIME__; a naive datetime is taken as UTC; default LOADED_AT). `date`/`time` give
    the descriptor's text as is instead.
    payload: the firmware's frozen modules, filename -> source.
    size: pad the image with deterministic pseudo-random IROM bytes to this many bytes
    (rounded up to 16); ValueError if the image is already larger.
    """
    if len(version.encode()) > 32 or len(project.encode()) > 32:
        raise ValueError("version and project name are at most 32 bytes")
    if not 0 <= secure_version <= 0xFFFFFFFF:
        raise ValueError("secure_version out of range")
    when = built or LOADED_AT
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    built_date, built_time = ff.build_date_time(when.year, when.month, when.day, when.hour,
                                                when.minute, when.second)
    date = built_date if date is None else date
    time = built_time if time is None else time
    payload = dict(payload or {})
    payload_data = pack_payload(payload)
    seed = hashlib.sha256(f"{project}\0{version}\0{secure_version}".encode()).digest()
    spec = chips.get(chip)
    if chip is not None:
        chip_id = spec.chip_id
    rng = random.Random(seed)
    elf_sha = hashlib.sha256(seed + payload_data).digest()
    desc = ff.pack_app_desc(version, project, time=time, date=date, idf_ver=idf_ver,
                            secure_version=secure_version, app_elf_sha256=elf_sha)
    rodata = _pad4(desc + f"MicroPython {version} ({project})\0".encode())
    dram = rng.randbytes(64)
    iram = rng.randbytes(1024)

    segments: list[tuple[int, bytes]] = []
    pos = ff.IMAGE_HEADER_SIZE

    def add(addr_fn, data: bytes) -> None:
        nonlocal pos
        addr = addr_fn(pos + ff.SEGMENT_HEADER_SIZE)
        segments.append((addr, data))
        pos += ff.SEGMENT_HEADER_SIZE + len(data)

    drom_base, irom_base = spec.drom[0], spec.irom[0]
    add(lambda off: drom_base + off, rodata)  # 0x3F400020 on the ESP32: app descriptor first
    drom_end = drom_base + pos
    add(lambda off: _mapped_addr(drom_base, off, drom_end + ff.MMU_PAGE_SIZE), payload_data)
    add(lambda off: spec.dram, dram)
    add(lambda off: spec.iram, iram)

    if size is not None:
        target = (size + 15) & ~15
        fixed = pos + ff.SEGMENT_HEADER_SIZE  # with the filler's header
        length = max(0, (target - fixed - 16 - ff.HASH_LEN) & ~3)
        while _total_len(fixed + length) < target:
            length += 4
        if length == 0 or _total_len(fixed + length) > target + 16:
            raise ValueError(f"image without padding is already {_total_len(pos)} bytes; "
                             f"size {size} is too small")
        add(lambda off: _mapped_addr(irom_base, off, irom_base), rng.randbytes(length))

    if chip is None:
        return _assemble(segments, chip_id)
    return _assemble(segments, chip_id, spec.iram + 0x404, spec.min_rev_full, spec.max_rev_full)


def _total_len(unpadded: int) -> int:
    return ((unpadded + 1 + 15) & ~15) + ff.HASH_LEN


def _assemble(segments: list[tuple[int, bytes]], chip_id: int, entry: int = ENTRY_ADDR,
              min_rev_full: int = 0, max_rev_full: int = 399) -> bytes:
    # min_rev (the header's old one-byte field) is the major part of min_rev_full, as
    # esptool's elf2image --min-rev-full sets both
    out = bytearray(ff.pack_image_header(len(segments), entry, chip_id=chip_id,
                                         min_rev=min_rev_full // 100, min_rev_full=min_rev_full,
                                         max_rev_full=max_rev_full))
    checksum = ff.CHECKSUM_SEED
    for addr, data in segments:
        if len(data) % 4:
            raise ValueError("segment length must be a multiple of 4")
        out += struct.pack("<II", addr, len(data)) + data
        checksum ^= ff.xor32(data)
    checksum = (checksum ^ (checksum >> 8) ^ (checksum >> 16) ^ (checksum >> 24)) & 0xFF
    pad = ((len(out) + 1 + 15) & ~15) - len(out) - 1
    out += b"\x00" * pad + bytes([checksum])
    out += hashlib.sha256(out).digest()
    return bytes(out)


def verify(image: bytes, part_size: int | None = None, **kw) -> dict:
    """Verify like esp_image_verify; raises flashfmt.ImageError, returns metadata."""
    return ff.verify_image_bytes(image, part_size, **kw)


def read_app_desc(image: bytes) -> dict:
    """The esp_app_desc_t fields of an app image (version, project_name, secure_version...)."""
    if len(image) < ff.APP_DESC_OFFSET + ff.APP_DESC_SIZE or image[0] != ff.IMAGE_MAGIC:
        raise ValueError("not an ESP app image (bad magic or too short)")
    desc = ff.parse_app_desc(image[ff.APP_DESC_OFFSET:ff.APP_DESC_OFFSET + ff.APP_DESC_SIZE])
    if desc is None:
        raise ValueError("image has no app descriptor (magic 0xABCD5432 missing at offset 32)")
    return desc


def iter_segments(image: bytes):
    """(load_addr, data_offset, length) for each segment of an image."""
    if len(image) < ff.IMAGE_HEADER_SIZE or image[0] != ff.IMAGE_MAGIC:
        raise ValueError("not an ESP app image")
    count = image[1]
    pos = ff.IMAGE_HEADER_SIZE
    for _ in range(count):
        if pos + ff.SEGMENT_HEADER_SIZE > len(image):
            raise ValueError("truncated image")
        addr, length = struct.unpack_from("<II", image, pos)
        pos += ff.SEGMENT_HEADER_SIZE
        if pos + length > len(image):
            raise ValueError("truncated image")
        yield addr, pos, length
        pos += length


def read_payload(image: bytes) -> dict[str, str]:
    """The frozen modules stored in an image ({} if it carries none)."""
    for _addr, off, length in iter_segments(image):
        if image[off:off + len(PAYLOAD_MAGIC)] == PAYLOAD_MAGIC:
            head = off + len(PAYLOAD_MAGIC)
            n, crc = struct.unpack_from("<II", image, head)
            blob = image[head + 8:head + 8 + n]
            if len(blob) != n or head + 8 + n > off + length or binascii.crc32(blob) != crc:
                raise ValueError("payload segment is corrupt")
            data = json.loads(blob.decode())
            if not isinstance(data, dict):
                raise ValueError("payload segment is not a mapping")
            return data
    return {}
