"""ESP32 images for the tests, laid out as ESP-IDF writes them.

`app_image` uses the emulator's builder when it is there and builds the bytes here otherwise;
`raw_app_image` always builds them here, with knobs to produce every kind of bad image.
"""

from __future__ import annotations

import hashlib
import random
import struct

APP_DESC_MAGIC = 0xABCD5432


def app_desc(version: str, project: str, secure_version: int = 0) -> bytes:
    desc = struct.pack("<II8x32s32s16s16s32s32s", APP_DESC_MAGIC, secure_version,
                       version.encode(), project.encode(), b"12:00:00", b"Jan  1 2025",
                       b"v5.2.2", bytes(range(32)))
    return desc + b"\0" * (256 - len(desc))


def raw_app_image(version: str = "1.0.0", project: str = "micropython", *, size: int = 4096,
                  chip_id: int = 0, hash_appended: bool = True, with_desc: bool = True,
                  seed: int = 1) -> bytes:
    """An app image: header, a DROM segment holding esp_app_desc_t, a filler segment."""
    first = (app_desc(version, project) if with_desc else b"\x50" + b"\0" * 255) + b"\0" * 32
    rnd = random.Random(seed)
    filler_len = max(4, (size - 24 - 16 - len(first) - 32) // 4 * 4)
    filler = bytes(rnd.getrandbits(8) for _ in range(filler_len))
    segments = [(0x3F400020, first), (0x400D0020, filler)]
    out = bytearray(struct.pack("<BBBBI", 0xE9, len(segments), 2, 0x20, 0x400D1000))
    out += struct.pack("<BBBBHBHH4sB", 0xEE, 0, 0, 0, chip_id, 0, 0, 0xFFFF, b"\0" * 4,
                       1 if hash_appended else 0)
    checksum = 0xEF
    for addr, data in segments:
        out += struct.pack("<II", addr, len(data)) + data
        for b in data:
            checksum ^= b
    out += b"\0" * (15 - len(out) % 16)
    out.append(checksum)
    if hash_appended:
        out += hashlib.sha256(out).digest()
    return bytes(out)


def app_image(version: str = "1.0.0", project: str = "micropython", size: int = 4096) -> bytes:
    try:
        from emulator.image import build_app_image
    except ImportError:
        return raw_app_image(version, project, size=size)
    return build_app_image(version, project=project, size=size)


def full_image(app: bytes) -> bytes:
    """A merged flash image as written at 0x1000: bootloader, partition table at 0x7000,
    the app at 0xF000 (ota_0 at 0x10000)."""
    boot = raw_app_image(with_desc=False, size=2048)
    out = bytearray(b"\xff" * 0xF000)
    out[:len(boot)] = boot
    entry = struct.pack("<2sBBII16sI", b"\xaa\x50", 0, 0x10, 0x10000, 0x180000,
                        b"ota_0", 0)
    out[0x7000:0x7000 + len(entry)] = entry
    return bytes(out) + app
