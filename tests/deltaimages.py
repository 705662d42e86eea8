"""A newer ESP32 app image made from an older one the way a firmware change makes it: the
version in the app descriptor, a few rewritten regions, bytes inserted and removed (so that
everything after them shifts), then the segment length, checksum and appended SHA-256 put
right. Delta patches between two such images are small, as between two builds of a firmware.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import random
import struct

DESC_VERSION = 48  # esp_app_desc_t.version in the image (image header 24 + segment header 8 + 16)


def segments(image: bytes) -> list[tuple[int, bytes]]:
    """(load address, data) of each segment."""
    out, pos = [], 24
    for _ in range(image[1]):
        addr, n = struct.unpack_from("<II", image, pos)
        out.append((addr, image[pos + 8:pos + 8 + n]))
        pos += 8 + n
    return out


def assemble(header: bytes, segs: list[tuple[int, bytes]]) -> bytes:
    """Header, segments, padding and checksum, and the appended SHA-256."""
    out = bytearray(header[:24])
    out[1] = len(segs)
    check = 0xEF
    for addr, data in segs:
        out += struct.pack("<II", addr, len(data)) + data
        check = functools.reduce(operator.xor, data, check)
    out += b"\0" * (15 - len(out) % 16)
    out.append(check)
    if header[23] == 1:
        out += hashlib.sha256(out).digest()
    return bytes(out)


def evolve(old: bytes, version: str, seed: int = 1, edits: int = 6) -> bytes:
    """A newer build of `old`: new version string, `edits` rewritten regions, 4 KB inserted
    and 2 KB removed in the last (largest) segment."""
    rnd = random.Random(seed)
    segs = segments(old)
    first = bytearray(segs[0][1])
    first[16:48] = version.encode().ljust(32, b"\0")  # the version, 16 bytes into the descriptor
    segs[0] = (segs[0][0], bytes(first))
    addr, data = segs[-1]
    body = bytearray(data)
    for _ in range(edits):
        n = rnd.randrange(16, 2000)
        at = rnd.randrange(0, len(body) - n)
        body[at:at + n] = rnd.randbytes(n)
    at = rnd.randrange(0, len(body) // 4) * 4
    body[at:at] = rnd.randbytes(4096)
    at = rnd.randrange(0, (len(body) - 2048) // 4) * 4
    del body[at:at + 2048]
    segs[-1] = (addr, bytes(body))
    return assemble(old[:24], segs)
