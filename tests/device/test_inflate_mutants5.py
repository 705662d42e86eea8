"""lib/fota/inflate.py, Inflater._fill: the BytesIO is refilled from the transport only when it
holds fewer than LOW compressed bytes ahead of the inflater; with LOW or more it is left as it
is (both sides of the bound)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp


@pytest.mark.parametrize("ahead,want", cases([
    ("inside-LOW", 2560, [2560, []]),  # enough: nothing is read
    ("outside-LOW-1", 2559, [4096, [4096 - 2559]])]))  # refilled up to AHEAD
def test_the_compressed_bytes_ahead_are_refilled_only_below_low(ahead, want):
    got = mp(f"""
from fota import inflate
reads = []
class Stream:
    total = 100000
    def __init__(self, start):
        pass
    def readinto(self, buf):
        reads.append(len(buf))
        return len(buf)
    def close(self):
        pass
z = inflate.Inflater(Stream, 400000, 100000, 12).open(0)
z.held = inflate.AHEAD  # the BytesIO is full, and the inflater took some of it
z.bio.seek(inflate.AHEAD - {ahead})
out([inflate.LOW, z._fill(), reads])
""")
    assert got == [2560] + want
