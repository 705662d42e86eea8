"""lib/fota/appwrite.py: FolderWriter refuses an image whose file cannot be written (a full
filesystem: OSError from write) with ImageError naming the file, rather than going on with a
file cut short; Half, one half of the ROMFS partition seen as a partition of its own, gives its
own flash address and size in info() and erases its own block n for ioctl(6, n)."""

from __future__ import annotations

import hashlib

import pytest

from tests.device.appimage import build
from tests.device.test_bounds import cases, mp

IMAGE = build({"app.py": "X = 1\n", "VERSION": "2.0", "data.bin": b"d" * 3000}, compile_py=False)

FULL = """
from fota import appwrite
real = open
class Full:
    # a file on a filesystem with FREE bytes left: a write past them raises ENOSPC (28)
    def __init__(self, f):
        self.f = f
    def write(self, b):
        global FREE
        if len(b) > FREE:
            raise OSError(28)
        FREE -= len(b)
        return self.f.write(b)
    def __enter__(self):
        return self
    def __exit__(self, *a):
        self.f.close()
appwrite.open = lambda p, m: Full(real(p, m))
w = appwrite.FolderWriter("app1", len(IMAGE))
out([error(w.feed_from, io.BytesIO(IMAGE)), error(w.finish, MD5)])
"""


@pytest.mark.parametrize("free,want", cases([
    ("room-for-all", 10000, ["ok", "ok"]),
    ("full-during-data-bin", 1500, ["ImageError: cannot write data.bin: 28", None])]))
def test_a_file_that_cannot_be_written_fails_the_image(free, want, tmp_path):
    code = f"IMAGE = {IMAGE!r}\nMD5 = {hashlib.md5(IMAGE).hexdigest()!r}\nFREE = {free}\n" + FULL
    got = mp(code, cwd=tmp_path)
    assert got[0] == want[0]
    if want[1] is not None:
        assert got[1] == want[1]


HALF = """
from fota import appwrite
class Seg:
    # the ROMFS partition at 0x200000: 8 sectors; ioctl(6, n) records the sector erased
    erased = []
    def info(self):
        return (1, 0x81, 0x200000, 8 * 4096, "romfs", False)
    def ioctl(self, op, arg):
        if op == 6:
            self.erased.append(arg)
            return 0
seg = Seg()
h = appwrite.Half(seg, SLOT, 4 * 4096)
h.ioctl(6, 0)
h.ioctl(6, 2)
out([list(h.info()), h.ioctl(4, 0), seg.erased])
"""


@pytest.mark.parametrize("slot,want", cases([
    ("slot-0", 0, [[1, 0x81, 0x200000, 16384, "romfs", False], 4, [0, 2]]),
    ("slot-1", 1, [[1, 0x81, 0x204000, 16384, "romfs", False], 4, [4, 6]])]))
def test_a_half_is_a_partition_of_its_own(slot, want):
    assert mp(HALF.replace("SLOT", str(slot))) == want
