"""lib/fota/cbor.py, decode: a message that ends inside the 1, 2, 4 or 8 bytes of an item's
argument is "message ends inside an item" (not taken for a shorter number followed by nothing);
one with every byte of it decodes."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_cbor_mutants11 import RUN

SHORT = ["error", "message ends inside an item"]


@pytest.mark.parametrize("hexdata,want", cases([
    ("uint8-whole", "1807", ["ok", 7]), ("uint8-no-byte", "18", SHORT),
    ("uint16-whole", "190100", ["ok", 256]), ("uint16-one-byte-short", "1901", SHORT),
    ("uint32-one-byte-short", "1a000001", SHORT), ("uint64-one-byte-short", "1b00000000000001", SHORT),
    ("negative-one-byte-short", "3901", SHORT)]))
def test_a_message_ending_inside_an_argument_is_short(hexdata, want):
    assert mp(RUN.replace("HEX", repr(hexdata))) == want
