"""lib/ecdsa.py in MicroPython against signatures made by OpenSSL (through `cryptography`)."""

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.device.mpy import run_json

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
DATA = b"firmware image bytes" * 100


def der_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def check(key_der: bytes, digest: bytes, sig_der: bytes) -> object:
    """-> True/False from ecdsa.verify, or the error ecdsa raised."""
    code = f"""
import json, binascii
from fota import ecdsa
try:
    k = ecdsa.public_key(binascii.unhexlify({key_der.hex()!r}))
    s = ecdsa.signature(binascii.unhexlify({sig_der.hex()!r}))
    print(json.dumps(ecdsa.verify(k, binascii.unhexlify({digest.hex()!r}), s)))
except ecdsa.SignatureError as e:
    print(json.dumps(str(e)))
"""
    return run_json(code)


SIG = KEY.sign(DATA, ec.ECDSA(hashes.SHA256()))
DIGEST = hashlib.sha256(DATA).digest()


def test_a_good_signature_verifies():
    assert check(der_key(KEY), DIGEST, SIG) is True


def test_raw_point_key_works_too():
    raw = KEY.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    assert check(raw, DIGEST, SIG) is True


@pytest.mark.parametrize("case", ["other data", "other key", "r and s swapped"])
def test_a_signature_of_something_else_does_not_verify(case):
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    key, digest, sig = der_key(KEY), DIGEST, SIG
    if case == "other data":
        digest = hashlib.sha256(DATA + b"!").digest()
    elif case == "other key":
        key = der_key(OTHER)
    else:
        r, s = decode_dss_signature(SIG)
        sig = encode_dss_signature(s, r)
    assert check(key, digest, sig) is False


def test_a_key_off_the_curve_is_refused():
    bad = bytearray(der_key(KEY))
    bad[-1] ^= 1  # y no longer matches x
    assert check(bytes(bad), DIGEST, SIG) == "public key is not on P-256"


@pytest.mark.parametrize("case", ["not an INTEGER", "trailing byte", "length"])
def test_malformed_signatures_are_refused(case):
    sig = bytearray(SIG)
    if case == "not an INTEGER":
        sig[2] = 0x03
    elif case == "trailing byte":
        sig += b"\0"
        sig[1] += 1
    else:
        sig[1] -= 1
    assert check(der_key(KEY), DIGEST, bytes(sig)) == "malformed signature"
