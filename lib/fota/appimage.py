# The length and the SHA-256 of the ESP32 app image in a slot, from its own headers: the
# 24-byte image header (magic 0xE9, segment count, ..., hash_appended in its last byte),
# each segment's 8-byte header (load address, length) and data, padding so that the
# checksum byte ends on a 16-byte boundary, then, with hash_appended, the SHA-256 of
# everything before it (what `esptool image-info` calls the validation hash). A delta
# update names its base image by that hash.

import binascii
import struct

HEAD = 24  # esp_image_header_t


class ImageError(Exception):
    pass


def length(part):
    # Bytes of the app image in `part` (appended SHA-256 included), and whether it has one.
    buf = bytearray(HEAD)
    part.readblocks(0, buf)
    if buf[0] != 0xE9:
        raise ImageError("no app image in the slot")
    bs = part.ioctl(5, 0)
    cap = part.ioctl(4, 0) * bs
    pos = HEAD
    seg = memoryview(buf)[:8]
    for _ in range(buf[1]):
        if pos + 8 > cap:
            raise ImageError("app image runs past its slot")
        part.readblocks(pos // bs, seg, pos % bs)
        pos += 8 + struct.unpack_from("<I", seg, 4)[0]
    hashed = buf[23] == 1
    pos = (pos | 15) + 1 + (32 if hashed else 0)
    if pos > cap:
        raise ImageError("app image runs past its slot")
    return pos, hashed


def sha256(part):
    # The app image's appended SHA-256 as 64 hex digits, or None if it has none (or its
    # headers do not hold together).
    try:
        n, hashed = length(part)
    except ImageError:
        return None
    if not hashed:
        return None
    digest = bytearray(32)
    bs = part.ioctl(5, 0)
    part.readblocks((n - 32) // bs, digest, (n - 32) % bs)
    return binascii.hexlify(digest).decode()
