"""lib/fota/streams.py's CBOR for stream requests, in MicroPython, against cbor2: every length
of an integer and of a text on both sides of each boundary of RFC 8949's head."""

from __future__ import annotations

import binascii

import cbor2

from tests.device.mpy import run_json

ENCODE = """
import json, binascii
from fota import streams
out = []
for fields in %r:
    buf = bytearray(600)
    n = streams._encode(buf, fields)
    out.append(binascii.hexlify(buf[:n]).decode())
print(json.dumps(out))
"""


def test_requests_encode_as_cbor2_does():
    cases = [[("c", "t"), ("n", v)] for v in (0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1)]
    cases += [[("k" * n, "v" * m)] for n, m in ((23, 24), (24, 23), (255, 256), (1, 0))]
    cases += [[(str(i), i) for i in range(24)], [(str(i), i) for i in range(25)], []]
    got = run_json(ENCODE % cases)
    assert got == [binascii.hexlify(cbor2.dumps(dict(c))).decode() for c in cases]
