"""lib/fota/appwrite.py, RomWriter: a ROMFS image written into one half of the ROMFS partition
starts where the job says (a resumed download goes on from a sector boundary, what is there
already hashed) and hashes the image with SHA-256 only when the job is signed; a signed image
written from its first byte is written and checked, not taken for a resume."""

from __future__ import annotations

import hashlib

import pytest

from tests.device.appimage import build
from tests.device.test_bounds import cases, mp

IMAGE = build({"app.py": "X = 1\n", "VERSION": "2.0", "data.bin": bytes(range(256)) * 24},
              compile_py=False)

RUN = """
from fota import appwrite
class Seg(bytearray):
    # the ROMFS partition at 0x200000: 8 sectors, a half of 4 for each slot
    def info(self):
        return (1, 0x81, 0x200000, len(self), "romfs", False)
    def readblocks(self, block, buf, off=0):
        buf[:] = memoryview(self)[block * 4096 + off:block * 4096 + off + len(buf)]
    def writeblocks(self, block, buf):
        self[block * 4096:block * 4096 + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4:
            return len(self) // 4096
        if op == 5:
            return 4096
        if op == 6:
            self[arg * 4096:(arg + 1) * 4096] = b"\\xff" * 4096
            return 0
seg = Seg(b"\\xff" * 8 * 4096)
H = 4 * 4096
seg[H:H + START] = IMAGE[:START]  # what an earlier try left in slot 1
w = appwrite.RomWriter(seg, 1, H, len(IMAGE), START, SIGNED)
at = w.written
src = io.BytesIO(IMAGE[at:])
while w.feed_from(src):
    pass
version = w.finish(MD5)
out([at, version, None if w.sha is None else binascii.hexlify(w.sha.digest()).decode(),
     bytes(seg[H:H + len(IMAGE)]) == IMAGE, seg[0] == 0xFF])
"""


@pytest.mark.parametrize("start,signed", cases([
    ("signed-from-the-start", 0, True),
    ("unsigned-resumed-at-sector-1", 4096, False),
    ("signed-resumed-at-sector-1", 4096, True)]))
def test_a_romfs_image_starts_where_the_job_says_and_is_hashed_when_signed(start, signed):
    assert len(IMAGE) > 4096
    code = (f"IMAGE = {IMAGE!r}\nMD5 = {hashlib.md5(IMAGE).hexdigest()!r}\n"
            + RUN.replace("START", str(start)).replace("SIGNED", str(signed)))
    sha = hashlib.sha256(IMAGE).hexdigest() if signed else None
    assert mp(code) == [start, "2.0", sha, True, True]
