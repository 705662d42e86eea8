"""lib/fota/install.py: a delta's Patcher is given the image's size and the patch's size in that
order, and the console line after the check says whether the document had an MD5 to check."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

PATCHER = """
from fota import install, otaslot, delta
class Patcher:
    def __init__(self, source, base, size, xsize):
        out([size, xsize])
delta.Patcher = Patcher
otaslot.running = lambda: None
install.log = lambda step, msg: None
class P:
    codec, size, xsize, args = "delta", 5000, 300, {"base": "ab" * 32}
install._image(P(), None, None)
"""


def test_a_patcher_gets_the_image_size_then_the_patch_size():
    assert mp(PATCHER) == [5000, 300]


VERIFY = """
from fota import install, otaslot
lines = []
install.log = lambda step, msg: lines.append([step, msg])
class Plan:
    kind, sig, slot, size, stream, codec, md5 = "fota", None, 1, 10, None, None, MD5
class Writer:
    def finish(self, md5):
        return ("1.2",)
install.plan_for = lambda doc: Plan()
install.signer_key = lambda: None
install.source = lambda p, ca, conn: None
install._download = lambda w, image, progress: None
install._admit = lambda desc, signed: None
otaslot.slots = lambda: ["p0", "p1"]
otaslot.SlotWriter = lambda part, size, start, sha256=False: Writer()
install.update({})
out(lines[-1])
"""


@pytest.mark.parametrize("md5,want", cases([
    ("no-md5", None, "10 bytes, no hash in the document, version 1.2"),
    ("md5", "0" * 32, "10 bytes, MD5 ok, version 1.2")]))
def test_the_check_line_says_whether_an_md5_was_checked(md5, want):
    assert mp(VERIFY.replace("MD5", repr(md5))) == ["verify", want]
