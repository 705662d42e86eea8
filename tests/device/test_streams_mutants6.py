"""lib/fota/streams.py, StreamFile.request: a request for blocks names the stream version ("s")
the description gave, in CBOR and in JSON, so AWS refuses it (VersionMismatch) if the stream
changed since; without a known version there is no "s"."""

from __future__ import annotations

import binascii
import json

import cbor2
import pytest

from tests.device.test_bounds import cases, mp


@pytest.mark.parametrize("fmt,version", cases([
    ("cbor-version-known", "cbor", 3), ("cbor-no-version", "cbor", None),
    ("json-version-known", "json", 3), ("json-no-version", "json", None)]))
def test_a_block_request_names_the_stream_version_when_known(fmt, version):
    got = mp(f"""
import binascii
from fota import streams
sent = []
class Conn:
    thing = "t"
    def on(self, prefix, f):
        pass
    def subscribe(self, topic):
        pass
    def publish(self, topic, payload):
        sent.append([topic, binascii.hexlify(payload if isinstance(payload, str) else bytes(payload)).decode()])
s = streams.StreamFile(Conn(), "s", 1, fmt={fmt!r})
s.version = {version!r}
s.request(2, 4)
out([s.token, sent])
""")
    token, sent = got
    assert len(sent) == 1
    topic, payload = sent[0]
    assert topic == f"$aws/things/t/streams/s/get/{fmt}"
    raw = binascii.unhexlify(payload)
    fields = cbor2.loads(raw) if fmt == "cbor" else json.loads(raw)
    want = {"c": token, "f": 1, "l": 4096, "o": 2, "n": 4}
    if version is not None:
        want["s"] = version
    assert fields == want
