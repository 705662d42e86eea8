"""lib/fota/selftest.py, memory(): MIN_FREE is asked for in whole pieces of PIECE bytes, the
fewest that hold it: as many as it takes when it is a whole number of pieces, one more for any
byte over (test_bounds.py's test_self_test_heap has the shipped 30000 bytes)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp


@pytest.mark.parametrize("min_free,pieces,ok", cases([
    ("whole-pieces-inside", 2 * 4096, 2, True), ("whole-pieces-outside", 2 * 4096, 1, False),
    ("a-byte-over-inside", 2 * 4096 + 1, 3, True), ("a-byte-over-outside", 2 * 4096 + 1, 2, False)]))
def test_self_test_heap_in_whole_pieces(min_free, pieces, ok):
    # the heap gives `pieces` buffers of 4 KB, then no more
    got = mp(f"""
from fota import selftest
selftest.MIN_FREE = {min_free}
n = [0]
def give(k):
    n[0] += 1
    if n[0] > {pieces}:
        raise MemoryError
    return None
selftest.bytearray = give
out([selftest.PIECE, selftest.memory(), n[0]])
""")
    assert got[0] == 4096
    if ok:
        assert got[1:] == [None, pieces]  # asked for exactly these
    else:
        assert got[1].startswith(f"heap could not give {min_free} bytes in 4096-byte pieces (got {pieces * 4096}")
