"""lib/fota/otaslot.py, SlotWriter.restart: a connection broken inside a sector drops the bytes
of that sector already received, so that the download goes on from the sector's first byte and
the slot gets the image as it is, not shifted by what the broken connection had sent."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import SLOTS, cases, mp

RUN = SLOTS + """
import hashlib
class Flash(Part):
    def __init__(self):
        Part.__init__(self)
        self.b = bytearray(b"\\xff" * 4 * 4096)
    def readblocks(self, block, buf, off=0):
        at = block * 4096 + off
        buf[:] = self.b[at:at + len(buf)]
    def writeblocks(self, block, buf):
        self.b[block * 4096:block * 4096 + len(buf)] = buf
class Stream:
    # the image from `start`; it breaks after `cut` bytes
    def __init__(self, image, start, cut=-1):
        self.image, self.pos, self.cut = image, start, cut
    def readinto(self, mv):
        if self.cut == 0:
            raise OSError(104)
        n = min(len(mv), len(self.image) - self.pos)
        if self.cut > 0:
            n = min(n, self.cut)
            self.cut -= n
        mv[:n] = self.image[self.pos:self.pos + n]
        self.pos += n
        return n
image = bytes((i * 13 + 5) & 0xFF for i in range(10000))
flash = Flash()
w = otaslot.SlotWriter(flash, len(image))
w.FIRMWARE = False  # any bytes: not an app image
s = Stream(image, 0, CUT)
try:
    while w.feed_from(s):
        pass
except OSError:
    pass
before = w.written
start = w.restart()
got = [before, start, w.written]
s = Stream(image, start)
while w.feed_from(s):
    pass
got.append(error(w.finish_data, binascii.hexlify(hashlib.md5(image).digest()).decode()))
got.append(bytes(flash.b[:len(image)]) == image)
out(got)
"""


@pytest.mark.parametrize("cut,want", cases([
    ("inside-the-first-sector", 1000, [1000, 0, 0]),
    ("inside-the-second-sector", 5000, [5000, 4096, 4096]),
    ("at-a-sector-boundary", 4096, [4096, 4096, 4096])]))
def test_a_broken_connection_drops_the_partly_received_sector(cut, want):
    assert mp(RUN.replace("CUT", str(cut))) == want + ["ok", True]
