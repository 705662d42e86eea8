"""tools/fotatools/cloud/streams.py: a stream file may be 24 MiB, 98304 blocks of 256 bytes
(the most a GetStream request can address); CreateStream takes an object of exactly that size
and refuses one byte more with an InvalidRequestException that names the limit."""

from __future__ import annotations

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError
from fotatools.cloud.store import ObjectStore
from fotatools.cloud.streams import StreamsEngine

ROLE = "arn:aws:iam::123456789012:role/stream-role"
LIMIT = 98304 * 256


@pytest.fixture
def engine(tmp_path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    for key, size in (("at.bin", LIMIT), ("over.bin", LIMIT + 1)):
        path = store.path("bucket", key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(size)  # sparse: no 24 MiB written
    yield StreamsEngine(db, store)
    db.close()


def files(key):
    return [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": key}}]


def test_a_file_of_24_mib_is_taken(engine):
    engine.create_stream({"streamId": "s", "files": files("at.bin"), "roleArn": ROLE})
    [f] = engine.describe_stream("s")["streamInfo"]["files"]
    assert f["s3Location"]["key"] == "at.bin"
    assert [r["size"] for r in engine.db.stream_files("s")] == [LIMIT]  # what DescribeStream gives a device


def test_a_file_one_byte_over_24_mib_is_refused(engine):
    with pytest.raises(ControlError) as e:
        engine.create_stream({"streamId": "s", "files": files("over.bin"), "roleArn": ROLE})
    assert e.value.kind == "InvalidRequestException"
    assert e.value.message == (f"the object s3://bucket/over.bin is {LIMIT + 1} bytes; "
                               f"a stream file may be at most {LIMIT}")
