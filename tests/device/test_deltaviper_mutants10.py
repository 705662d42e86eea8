"""lib/fota/deltaviper.py and deltaplain.py, hs_decode: the two kernels stop in the same state
(st[4]) wherever the compressed input runs out, and each module's TAG, LITERAL, INDEX, COUNT and
COPY name that state: a decoder's st can be read (and a decode resumed) whichever kernel made
it."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

# Heatshrink with an 8-bit window and LB-bit lookahead: a literal is a 1 bit then 8 bits, a
# back-reference a 0 bit, 8 bits of offset - 1, LB bits of count - 1 (MSB first).
RUN = """
import array
from fota import deltaviper, deltaplain
res = []
for kern in (deltaviper, deltaplain):
    st = array.array("i", [0, len(SRC), 0, 0, 0, 0, 0, 0, 8, LB])
    win = bytearray(256)
    buf = bytearray(OUT)
    n = kern.hs_decode(st, SRC, win, buf)
    res.append([n, list(st), st[4] == kern.NAME])
out(res)
"""


@pytest.mark.parametrize("src,lb,out_len,name,made", cases([
    # 1 + 7 bits of a literal: the tag is read, its byte is not there yet
    ("inside-a-literal", b"\xc1", 4, 4, "LITERAL", 0),
    # 0 + 7 bits of an offset
    ("inside-an-offset", b"\x01", 8, 4, "INDEX", 0),
    # 0 + 8 bits of offset + 7 bits of an 8-bit count
    ("inside-a-count", b"\x00\x00", 8, 4, "COUNT", 0),
    # literal "A", then a back-reference of offset 1, count 3, into 2 bytes of output
    ("inside-a-copy", b"\xa0\x80\x08", 4, 2, "COPY", 2),
    # one literal, whole, into 1 byte of output
    ("between-items", b"\xa0\x80", 4, 1, "TAG", 1)]))
def test_both_kernels_stop_in_the_state_they_name(src, lb, out_len, name, made):
    got = mp(RUN.replace("SRC", repr(src)).replace("LB", str(lb)).replace("OUT", str(out_len))
             .replace("NAME", name))
    assert got[0] == got[1]  # viper, plain: bytes made, st, st[4] == the kernel's name for it
    assert got[0][0] == made and got[0][2] is True
