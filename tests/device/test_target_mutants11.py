"""lib/fota/target.py, FileTarget.close: the staged file is refused unless both the bytes the
filesystem said it wrote and the size it reports for the file are the document's size; a
filesystem that loses bytes while saying it wrote them, or says it wrote fewer than it did, does
not get its file put in place."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
import os
from fota import target
class F:
    id, size, path = 2, 100, None
class Lossy:
    # the staged file as a filesystem that keeps KEEP bytes of each write and says SAYS
    def __init__(self, f):
        self.f = f
    def write(self, data):
        self.f.write(data[:len(data) + KEEP])
        return len(data) + SAYS
    def close(self):
        self.f.close()
t = target.FileTarget("f.bin")
t.create(F)
t.f = Lossy(t.f)
t.write(0, b"x" * 100)
r = error(t.close)
if r != "ok":
    t.abort()
out([r, sorted(os.listdir())])
"""


@pytest.mark.parametrize("keep,says,want", cases([
    ("whole", 0, 0, ["ok", ["f.bin.new"]]),
    ("one-byte-lost", -1, 0, ["TargetError: 99 bytes stored of 100 written, the file has 100", []]),
    ("one-byte-unsaid", 0, -1, ["TargetError: 100 bytes stored of 99 written, the file has 100", []])]))
def test_a_staged_file_is_refused_unless_written_and_stored_whole(keep, says, want, tmp_path):
    assert mp(RUN.replace("KEEP", str(keep)).replace("SAYS", str(says)), cwd=tmp_path) == want
