"""lib/fota/otaslot.py, SlotWriter resumed after a power cut: the sectors already in the slot are
read back (readblocks(block, buf, offset), as esp32.Partition takes them) and hashed, so the MD5
of the whole image is that of the bytes in the slot."""

from __future__ import annotations

import hashlib

from tests.device.test_bounds import mp

IMAGE = bytes((i * 7 + i // 256) & 0xFF for i in range(3 * 4096))


def test_a_resumed_writer_hashes_the_sectors_already_in_the_slot():
    got = mp(f"""
from fota import otaslot
import binascii
IMAGE = {IMAGE!r}
class Part:
    def info(self):
        return (0, 0x11, 0x210000, 4 * 4096, "ota_1", False)
    def ioctl(self, op, arg):
        return 4
    def readblocks(self, block, buf, off=0):
        at = block * 4096 + off
        buf[:] = IMAGE[at:at + len(buf)]
w = otaslot.SlotWriter(Part(), len(IMAGE), 2 * 4096)
out(binascii.hexlify(w.md5.digest()).decode())
""")
    assert got == hashlib.md5(IMAGE[:2 * 4096]).hexdigest()
