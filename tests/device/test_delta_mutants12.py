"""lib/fota/delta.py, Patcher: the patch data is decompressed into a buffer of 4096 bytes (the
4 KB the module's header counts in its RAM), made once by the Patcher for every open. How much
is decompressed at a time shows in the reason a patch with data after its end is refused: the
patch bytes read by then. Here a CRLE patch's entries take 4094 bytes, one byte of the same
segment follows them, and one more comes in the transport's next piece: a 4096-byte buffer
asks for that piece before the entries are made, a 4095-byte one would not."""

from __future__ import annotations

from tests.device.test_bounds import mp

# Header (sequential patch, CRLE), the image size 4089 as a size field; then the CRLE segments:
# [data format 0, diff 0, extra size 4089], 4089 x 0xAA, [adjustment 0, one byte too many];
# and in the next piece one more segment of one byte.
SIZE = bytes([0xB9, 0x3F])  # 4089: bits 5-0 in the first byte (with "more"), bits 12-6 next
FIRST = (bytes([0x02]) + SIZE
         + bytes([0, 4, 0x00, 0x00]) + SIZE
         + bytes([1, 0xF9, 0x1F, 0xAA])  # repeated, 4089 as unsigned LEB128
         + bytes([0, 2, 0x00, 0x00]))
SECOND = bytes([0, 1, 0x00])

RUN = f"""
from fota import delta
delta.appimage.length = lambda base: (4000,)  # the running image's length, without a slot
class Base:
    def ioctl(self, op, arg):
        return 4096
    def readblocks(self, block, buf, off):
        raise AssertionError("an extra-only patch reads no base")
PIECES = [{FIRST!r}, {SECOND!r}]
class Stream:
    total = {len(FIRST) + len(SECOND)}
    def __init__(self, start):
        self.left = list(PIECES)
    def readinto(self, buf):
        if not self.left:
            return 0
        p = self.left.pop(0)
        buf[:len(p)] = p
        return len(p)
    def close(self):
        pass
def make():
    p = delta.Patcher(Stream, Base(), 4089, Stream.total).open(0)
    buf = bytearray(8192)
    while p.readinto(buf):
        pass
out(error(make))
"""


def test_patch_data_is_decompressed_4096_bytes_at_a_time():
    n = len(FIRST) + len(SECOND)
    assert mp(RUN) == f"DeltaError: patch has data after its end ({n} patch bytes read)"
