"""tools/fotatools/cloud/streams.py: CreateStream refuses an s3Location whose bucket is empty
with its own message (the AWS IoT API reference's S3Location: bucket and key are strings of at
least one character), and an engine made without a publish function answers a device's
request without an error."""

from __future__ import annotations

import logging

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError
from fotatools.cloud.store import ObjectStore
from fotatools.cloud.streams import StreamsEngine

ROLE = "arn:aws:iam::123456789012:role/r"


@pytest.fixture()
def world(tmp_path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    store.put("bucket", "f.bin", b"x" * 300)
    yield db, store
    db.close()


@pytest.mark.parametrize("loc", [{"bucket": "", "key": "f.bin"}, {"bucket": "bucket", "key": ""},
                                 {"key": "f.bin"}, {"bucket": "bucket", "key": 7}])
def test_an_empty_or_missing_bucket_or_key_is_refused_by_name(world, loc):
    engine = StreamsEngine(*world)
    with pytest.raises(ControlError) as e:
        engine.create_stream({"streamId": "s", "roleArn": ROLE, "files": [{"fileId": 1, "s3Location": loc}]})
    assert e.value.kind == "InvalidRequestException"
    assert e.value.message == "files[0].s3Location needs a bucket and a key (strings)"


def test_an_engine_without_publish_answers_a_request_without_an_error(world, caplog):
    caplog.set_level(logging.WARNING)
    engine = StreamsEngine(*world)
    engine.create_stream({"streamId": "s", "roleArn": ROLE,
                          "files": [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]})
    engine.handle("$aws/things/t/streams/s/describe/json", b'{"c": "tok"}')
    engine.handle("$aws/things/t/streams/s/get/json", b'{"c": "tok", "f": 1, "l": 256}')
    engine.handle("$aws/things/t/streams/nope/describe/json", b'{"c": "tok"}')
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
