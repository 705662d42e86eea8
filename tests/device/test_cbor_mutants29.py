"""lib/fota/cbor.py, decode: a map whose value is a break code (0xff) is refused as a bad map
entry, definite or indefinite, instead of holding the break marker as a value."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import cbor
def decode(h):
    try:
        return ["ok", repr(cbor.decode(binascii.unhexlify(h)))]
    except cbor.CborError as e:
        return ["error", str(e)]
out(decode(HEX))
"""


@pytest.mark.parametrize("hexdata,want", cases([
    ("definite-map-value-break", "a16161ff", ["error", "bad map entry"]),
    ("indefinite-map-value-break", "bf6161ffff", ["error", "bad map entry"]),
    ("indefinite-map-whole", "bf616101ff", ["ok", "{'a': 1}"])]))
def test_a_break_as_a_map_value_is_a_bad_entry(hexdata, want):
    assert mp(RUN.replace("HEX", repr(hexdata))) == want
