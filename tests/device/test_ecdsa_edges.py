"""lib/fota/ecdsa.py's reading of a DER signature, in MicroPython, on both sides of each of its
bounds: every malformed form is a SignatureError (never another exception), and r, s outside
1..N-1 never verify."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from tests.device.mpy import run_json

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

SIGNATURE = """
import json
from fota import ecdsa
out = []
for der in %r:
    try:
        out.append(list(ecdsa.signature(der)))
    except ecdsa.SignatureError as e:
        out.append("SignatureError")
    except Exception as e:
        out.append(type(e).__name__)
print(json.dumps(out))
"""


def der(r: bytes, s: bytes, extra: bytes = b"", lr: int | None = None, ls: int | None = None) -> bytes:
    body = bytes([2, len(r) if lr is None else lr]) + r + bytes([2, len(s) if ls is None else ls]) + s + extra
    return bytes([0x30, len(body)]) + body


def test_malformed_signatures_are_one_error():
    r, s = b"\x01" * 32, b"\x02" * 32
    cases = [der(r, s), der(b"\x00" + b"\x81" * 32, s), der(b"\x00" + b"\x81" * 33, s),  # 33 ok, 34 not
             der(r, s, lr=40), der(r, s, lr=64), der(r, s, ls=33), der(r, s, ls=31), der(r, s, extra=b"\x00"),
             der(r, s)[:-1], b"\x31" + der(r, s)[1:], der(r, s)[:1] + b"\x45" + der(r, s)[2:],
             der(r, b"\x02"), der(b"\x05", b"\x07"), b"0\x06\x02\x01\x05\x02\x01",
             bytes([0x30, 6, 3, 1, 5, 2, 1, 7]), bytes([0x30, 6, 2, 1, 5, 4, 1, 7]),
             bytes([0x30, 6, 2, 5, 1, 2, 3, 4]),  # r runs past the end: nothing left for s
             bytes([0x30, 6, 2, 1, 5, 2, 2, 7]),  # s runs one byte past the end
             bytes([0x30, 5, 2, 1, 5, 2, 0])]  # seven bytes: under the eight of the shortest
    got = run_json(SIGNATURE % cases)
    assert got == [[int.from_bytes(r, "big"), int.from_bytes(s, "big")],
                   [int.from_bytes(b"\x81" * 32, "big"), int.from_bytes(s, "big")],
                   "SignatureError", "SignatureError", "SignatureError", "SignatureError", "SignatureError",
                   "SignatureError", "SignatureError", "SignatureError", "SignatureError",
                   [int.from_bytes(r, "big"), 2], [5, 7], "SignatureError", "SignatureError", "SignatureError",
                   "SignatureError", "SignatureError", "SignatureError"]


VERIFY = """
import json
from fota import ecdsa
key = ecdsa.public_key(%r)
out = []
for digest, r, s in %r:
    out.append(ecdsa.verify(key, digest, (r, s)))
print(json.dumps(out))
"""


def test_r_and_s_only_within_1_to_n_minus_1():
    k = ec.generate_private_key(ec.SECP256R1())
    pub = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(b"firmware").digest()
    r, s = utils.decode_dss_signature(k.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))
    other = hashlib.sha256(b"other").digest()
    cases = [(digest, r, s), (digest, N - s and r, N - s),  # (r, -s) verifies too (ECDSA malleability)
             (other, r, s), (digest, r + 1, s), (digest, 0, s), (digest, r, 0), (digest, N, s), (digest, r, N),
             (digest, r + N, s), (digest, r, s + N)]
    got = run_json(VERIFY % (pub, cases))
    assert got == [True, True, False, False, False, False, False, False, False, False]


def test_keys_whose_sums_pass_through_infinity_verify():
    # The key -G (private key N-1): G + Q, one of the precomputed sums, is the point at
    # infinity; and the key G, where G + Q is a doubling. Signatures by them verify, and a
    # signature of something else does not.
    cases, keys = [], []
    for d in (N - 1, 1):
        k = ec.derive_private_key(d, ec.SECP256R1())
        keys.append(k.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
        digest = hashlib.sha256(b"firmware %d" % d).digest()
        r, s = utils.decode_dss_signature(k.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))
        cases.append([(digest, r, s), (hashlib.sha256(b"other").digest(), r, s)])
    got = [run_json(VERIFY % (key, c)) for key, c in zip(keys, cases)]
    assert got == [[True, False], [True, False]]
