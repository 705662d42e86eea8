"""lib/fota/inflate.py, Inflater.open: a transferred file whose size is not the document's is
refused, and the stream opened for it is closed (an HTTPS socket left open would hold its TLS
buffers while the retry opens another)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp


# A source of `total` bytes that counts its opens and closes (also for test_delta_mutants6.py)
STREAM = """opened, closed = [], []
class Stream:
    total = {total}
    def __init__(self, start):
        opened.append(start)
    def readinto(self, buf):
        return 0
    def close(self):
        closed.append(1)
"""


@pytest.mark.parametrize("total,want", cases([
    ("inside-same-size", 1000, ["ok", 1, 0]),
    ("outside-one-more", 1001, ["InflateError: server has 1001 bytes, document says 1000", 1, 1]),
    ("outside-one-less", 999, ["InflateError: server has 999 bytes, document says 1000", 1, 1])]))
def test_a_source_of_the_wrong_size_is_closed(total, want):
    got = mp(f"""
from fota import inflate
{STREAM.format(total=total)}
out([error(inflate.Inflater(Stream, 4000, 1000, 12).open, 0), len(opened), len(closed)])
""")
    assert got == want
