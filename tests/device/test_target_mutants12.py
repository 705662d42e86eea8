"""lib/fota/target.py, FileTarget.close: the staged file must hold as many bytes as the file has,
read back from the filesystem, even when every write said it took all its bytes (a card or a
filesystem that loses what it acknowledged): such a file is not put in place."""

from __future__ import annotations

import pytest

from tests.device.mpy import run_json
from tests.device.test_bounds import cases

RUN = """
import json, os
from fota import target
class F:
    id, size, path = 2, 100, None
class Lossy:
    # a file whose writes report every byte taken but keep LOST fewer of them
    def __init__(self, f):
        self.f = f
    def write(self, data):
        self.f.write(data[:len(data) - LOST])
        return len(data)
    def close(self):
        self.f.close()
t = target.FileTarget("f.bin")
t.create(F)
t.f = Lossy(t.f)
t.write(0, b"x" * 100)
try:
    got = t.close()[:7]
except target.TargetError as e:
    t.abort()
    got = str(e)
print(json.dumps([got, t.n, sorted(os.listdir())]))
"""


@pytest.mark.parametrize("lost,want", cases([
    ("inside-all-kept", 0, ["sha256:", 100, ["f.bin.new"]]),
    ("outside-one-byte-lost", 1, ["99 bytes stored of 100 written, the file has 100", 100, []])]))
def test_a_staged_file_shorter_than_its_writes_said_is_not_put_in_place(lost, want, tmp_path):
    assert run_json(RUN.replace("LOST", str(lost)), cwd=tmp_path) == want
