"""lib/fota/smp.py, Smp._packet: an answer's packet may be split over its serial frames at any
byte once its first frame holds the 16-bit length field (mcumgr's serial transport: the first
frame starts with the packet length, the frames after it carry the rest); a first frame with
less than the length field is garbled."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import SMP, cases, mp

RUN = SMP + """
u = Uart(lambda n: {"off": 1}, piece=PIECE, hdr=UPLOAD)
s = smp.Smp(u)
out([error(s.upload, 0, b"x"), u.n])
"""


@pytest.mark.parametrize("piece,want", cases([
    ("first-frame-of-3-bytes", 3, ["ok", 1]),
    ("first-frame-of-just-the-length", 2, ["ok", 1]),
    ("first-frame-of-1-byte", 1, ["SmpError: garbled answer to image upload: length field -2", 3])]))
def test_frames_split_after_the_length_field_make_one_answer(piece, want):
    assert mp(RUN.replace("PIECE", str(piece))) == want
