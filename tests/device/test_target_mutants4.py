"""lib/fota/target.py, SmpTarget._send: an MCU whose upload answer takes no byte of the chunk
ends the upload at once, named, instead of being asked again and again."""

from __future__ import annotations

from tests.device.test_bounds import tgt


def test_an_upload_answer_that_takes_no_byte_ends_the_upload_at_once():
    got = tgt("""
asked = []
def take(off, k):
    asked.append(off)
    return off  # the MCU stays where it was
t = smp_target(Smp(take))
t.create(F())
t.new = "2.0.0"  # header read: the version check is not what this tests
def upload():
    t.write(0, bytes(100))
    while t.fill:
        t._send()
out([error(upload), asked, t.off])
""")
    assert got == ["TargetError: secondary took no bytes at byte 0 of 100", [0], 0]


def test_an_upload_answer_that_takes_one_byte_goes_on():
    got = tgt("""
def take(off, k):
    return off + 1 if off == 0 else off + k
t = smp_target(Smp(take))
t.create(F())
t.new = "2.0.0"
def upload():
    t.write(0, bytes(100))
    while t.fill:
        t._send()
out([error(upload), t.off])
""")
    assert got == ["ok", 100]
