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


DECODE = """
import json, binascii
from fota import streams
out = []
for h in %r:
    try:
        d = streams._decode(memoryview(binascii.unhexlify(h)))
        out.append(sorted((k, bytes(v).hex() if isinstance(v, memoryview) else v) for k, v in d.items()))
    except streams.StreamError as e:
        out.append(str(e))
print(json.dumps(out))
"""


def test_answers_decode_every_integer_length_and_refuse_longer_heads():
    values = [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32]
    cases = [cbor2.dumps({"i": v}).hex() for v in values] + [cbor2.dumps({"p": b"ab" * 20}).hex()]
    cases += ["a161691c", "a161691d", "a161691f"]  # {"i": ...} with additional info 28, 29, 31
    got = run_json(DECODE % cases)
    assert got[:len(values)] == [[["i", v]] for v in values]
    assert got[len(values)] == [["p", (b"ab" * 20).hex()]]
    assert got[len(values) + 1:] == ["unsupported CBOR item"] * 3
