"""lib/fota/ecdsa.py's verify against OpenSSL (through `cryptography`) over many keys and
digests, valid and tampered, and on the rare signature whose point has an x of N or more (the
r + N case of its check without an inverse), built from the curve's own arithmetic."""

from __future__ import annotations

import hashlib
import random

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tests.device.mpy import run_json

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
PRE = ec.ECDSA(utils.Prehashed(hashes.SHA256()))


def verify_all(cases: list[tuple[bytes, bytes, bytes]]) -> list:
    """ecdsa.verify on the device for each (raw key, digest, DER signature)."""
    code = "import json, binascii\nfrom fota import ecdsa\nu = binascii.unhexlify\nout = []\n"
    for key, digest, sig in cases:
        code += (f"out.append(ecdsa.verify(ecdsa.public_key(u({key.hex()!r})), u({digest.hex()!r}), "
                 f"ecdsa.signature(u({sig.hex()!r}))))\n")
    return run_json(code + "print(json.dumps(out))\n")


def raw(pub: ec.EllipticCurvePublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def openssl_says(pub: ec.EllipticCurvePublicKey, digest: bytes, sig: bytes) -> bool:
    try:
        pub.verify(sig, digest, PRE)
        return True
    except InvalidSignature:
        return False


def test_many_signatures_and_their_tampered_copies_agree_with_openssl():
    rnd = random.Random(23)
    cases = []
    for i in range(12):
        key = ec.generate_private_key(ec.SECP256R1())
        digest = hashlib.sha256(rnd.randbytes(40)).digest()
        sig = key.sign(digest, PRE)
        r, s = utils.decode_dss_signature(sig)
        other = bytearray(digest)
        other[rnd.randrange(32)] ^= 1 << rnd.randrange(8)
        other = bytes(other)
        for d, rs in ((digest, (r, s)), (other, (r, s)), (digest, (r, (s + 1) % N or 1)),
                      (digest, ((r ^ 1) or 1, s)), (digest, (r, N - s))):
            cases.append((key.public_key(), d, utils.encode_dss_signature(*rs)))
    want = [openssl_says(k, d, s) for k, d, s in cases]
    assert want.count(True) == 24  # each signature and its (r, N - s) twin; no tampered copy
    assert verify_all([(raw(k), d, s) for k, d, s in cases]) == want


# -- a signature whose point R has x >= N: r = x - N ---------------------------------------------

def _add(p, q):
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0]:
        if (p[1] + q[1]) % P == 0:
            return None
        m = (3 * p[0] * p[0] - 3) * pow(2 * p[1], -1, P) % P
    else:
        m = (q[1] - p[1]) * pow(q[0] - p[0], -1, P) % P
    x = (m * m - p[0] - q[0]) % P
    return x, (m * (p[0] - x) - p[1]) % P


def _mul(k, p):
    out = None
    while k:
        if k & 1:
            out = _add(out, p)
        p = _add(p, p)
        k >>= 1
    return out


def point_with_x_past_n() -> tuple[int, int]:
    x = N
    while True:
        rhs = (x ** 3 - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return x, y
        x += 1


def test_a_point_with_x_past_n_verifies_as_openssl_says():
    # For any r, s and digest, Q = u2**-1 (R - u1 G) is the key under which (r, s) signs the
    # digest with the point R: u1 G + u2 Q = R.
    big = point_with_x_past_n()
    r = big[0] - N
    digest = hashlib.sha256(b"x past N").digest()
    s = 0x1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF
    w = pow(s, -1, N)
    u1, u2 = int.from_bytes(digest, "big") * w % N, r * w % N
    g1 = _mul(u1, G)
    q = _mul(pow(u2, -1, N), _add(big, (g1[0], -g1[1] % P)))
    pub = ec.EllipticCurvePublicNumbers(q[0], q[1], ec.SECP256R1()).public_key()
    sig = utils.encode_dss_signature(r, s)
    other = hashlib.sha256(b"something else").digest()
    assert [openssl_says(pub, digest, sig), openssl_says(pub, other, sig)] == [True, False]
    assert verify_all([(raw(pub), digest, sig), (raw(pub), other, sig)]) == [True, False]
