"""tools/fotatools/cloud/streams.py, in process: GetStream takes a block bitmap of up to 12288
bytes (one bit for each of the 98304 blocks a request may name, the developer guide's bound)
and refuses one byte more with BlockBitmapLimitExceeded, in JSON and in CBOR. The numbers are
written out here: a test that reads MAX_BITMAP from the module moves with it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fotatools.cloud import cbor

from tests.cloud.engines import streams_engine

DATA = bytes(range(256)) * 3  # three blocks of 256 bytes


@pytest.fixture()
def engine(tmp_path: Path):
    yield from streams_engine(tmp_path, DATA, file_id=0, record=True)


@pytest.mark.parametrize("fmt", ["json", "cbor"])
@pytest.mark.parametrize("size, taken", [(12288, True), (12289, False)])
def test_a_bitmap_of_12288_bytes_is_taken_and_one_byte_more_refused(engine, fmt, size, taken):
    bitmap = b"\x05" + bytes(size - 1)  # blocks 0 and 2, then zeros
    req = {"c": "t", "f": 0, "l": 256, "b": base64.b64encode(bitmap).decode() if fmt == "json" else bitmap}
    engine.handle(f"$aws/things/dev/streams/s1/get/{fmt}",
                  json.dumps(req).encode() if fmt == "json" else cbor.dumps(req))
    if taken:
        assert [(topic, body["i"]) for topic, body in engine.sent] == \
            [(f"$aws/things/dev/streams/s1/data/{fmt}", 0), (f"$aws/things/dev/streams/s1/data/{fmt}", 2)]
    else:
        (topic, body), = engine.sent
        assert topic == f"$aws/things/dev/streams/s1/rejected/{fmt}"
        assert body["o"] == "BlockBitmapLimitExceeded" and body["c"] == "t"
        assert body["m"] == "The block bitmap is 12289 bytes; at most 12288 are allowed"
