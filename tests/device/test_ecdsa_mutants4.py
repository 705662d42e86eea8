"""lib/fota/ecdsa.py, public_key: only an uncompressed point (0x04 || X || Y) is a key, raw or
at the end of a DER SubjectPublicKeyInfo; a point marked compressed (0x02, 0x03) is refused even
when its X and Y are on the curve."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
BAD = "SignatureError: not an uncompressed P-256 public key"


def point(tag: int) -> bytes:
    return bytes([tag]) + GX.to_bytes(32, "big") + GY.to_bytes(32, "big")


@pytest.mark.parametrize("der,ok", cases([
    ("raw-04", point(4), True), ("raw-02", point(2), False), ("raw-03", point(3), False),
    ("spki-04", SPKI + point(4), True), ("spki-02", SPKI + point(2), False),
    ("spki-03", SPKI + point(3), False)]))
def test_only_an_uncompressed_point_is_a_key(der, ok):
    got = mp(f"""
from fota import ecdsa
def key():
    x, y = ecdsa.public_key({der!r})
    return [hex(x), hex(y)]
try:
    out(key())
except Exception as e:
    out("%s: %s" % (type(e).__name__, e))
""")
    assert got == ([hex(GX), hex(GY)] if ok else BAD)
