"""lib/fota/target.py: FileTarget.abort closes the staged file it has open before it removes
it (an open file keeps its filesystem handle and cache in RAM until the collector finds it),
once; SmpTarget.write keeps only the image header (HEADER bytes) for the version check however
the image comes, and bytes written again that the target already holds (a download started
over, fota/files.py) are skipped without a request to the MCU."""

from __future__ import annotations

import pytest

from tests.device.mpy import run_json
from tests.device.test_bounds import cases, tgt

ABORT = """
import json, os
from fota import target
class F:
    id, size, path = 2, 100, None
log = []
class Watched:
    def __init__(self, f):
        self.f = f
    def write(self, data):
        return self.f.write(data)
    def close(self):
        log.append("close")
        self.f.close()
t = target.FileTarget("f.bin")
WHEN
t.abort()
t.abort()  # a second abort: nothing left to close
print(json.dumps([log, t.f is None, sorted(os.listdir())]))
"""


@pytest.mark.parametrize("when,want", cases([
    ("written", "t.create(F)\nt.f = Watched(t.f)\nt.write(0, b'x' * 10)", [["close"], True, []]),
    ("created", "t.create(F)\nt.f = Watched(t.f)", [["close"], True, []]),
    ("closed", "t.create(F)\nt.f = Watched(t.f)\nt.write(0, b'x' * 100)\nt.close()", [["close"], True, []]),
    ("never-created", "", [[], True, []])]))
def test_abort_closes_the_staged_file_once_and_removes_it(when, want, tmp_path):
    assert run_json(ABORT.replace("WHEN", when), cwd=tmp_path) == want


HEAD = """
import struct
def image(n):
    # an MCUboot image of n bytes, version 2.0.0
    b = bytearray(n)
    struct.pack_into("<I", b, 0, target.MCUBOOT_MAGIC)
    b[20] = 2
    return b
"""


@pytest.mark.parametrize("piece", [1, 31, 32, 33, 100, 4096])
def test_only_the_header_is_kept_whatever_the_pieces(piece):
    got = tgt(HEAD + f"""
class Big(F):
    size = 5000
t = smp_target(Smp(lambda off, k: off + k, buf_size=512))
t.create(Big())
img = image(Big.size)
for pos in range(0, Big.size, {piece}):
    t.write(pos, img[pos:pos + {piece}])
out([target.HEADER, len(t.head), t.new, t.off])
""")
    assert got == [32, 32, "2.0.0", 5000]


@pytest.mark.parametrize("again,asked", cases([
    ("all-held", 100, [[0, 100]]),  # the whole file once more: all of it is on the MCU or buffered
    ("part-held", 40, [[0, 100]]),
]))
def test_bytes_written_again_that_the_target_holds_ask_nothing_of_the_mcu(again, asked):
    # the MCU takes half of the last (only) chunk; the download then starts over from 0
    got = tgt(HEAD + f"""
sent = []
def take(off, k):
    sent.append([off, k])
    return off + k // 2 if off == 0 else off + k
t = smp_target(Smp(take))
t.create(F())
img = image(F.size)
first = t.write(0, img)
again = t.write(0, img[:{again}])
n = len(sent)
t.fill and t._send()
out([first, again, sent[:n], sent[n:], t.off])
""")
    assert got == [50, 50, asked, [[50, 50]], 100]
