"""lib/fota/cbor.py, decode: of CBOR's simple values only false (0xf4), true (0xf5) and null
(0xf6) are values; undefined, the other simple values and floats are refused as unsupported, as
an item alone or inside a map."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

# decode(HEX) -> ["ok", value] or ["error", reason] (test_cbor_mutants19 uses it too)
RUN = """
from fota import cbor
def decode(h):
    try:
        return ["ok", cbor.decode(binascii.unhexlify(h))]
    except cbor.CborError as e:
        return ["error", str(e)]
out(decode(HEX))
"""
UNSUPPORTED = ["error", "unsupported simple value or float"]


@pytest.mark.parametrize("hexdata,want", cases([
    ("false", "f4", ["ok", False]), ("true", "f5", ["ok", True]), ("null", "f6", ["ok", None]),
    ("undefined", "f7", UNSUPPORTED), ("simple-19", "f3", UNSUPPORTED), ("simple-0", "e0", UNSUPPORTED),
    ("simple-one-byte", "f820", UNSUPPORTED), ("half-float", "f93c00", UNSUPPORTED),
    ("null-in-a-map", "a16172f6", ["ok", {"r": None}]), ("undefined-in-a-map", "a16172f7", UNSUPPORTED)]))
def test_only_false_true_and_null_are_simple_values(hexdata, want):
    assert mp(RUN.replace("HEX", repr(hexdata))) == want
