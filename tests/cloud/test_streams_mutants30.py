"""tools/fotatools/cloud/streams.py: CreateStream for the id of a stream that exists fails with
ResourceAlreadyExistsException (an AWS IoT CreateStream error; HTTP 409 as the stand-in's
control API answers it), its message naming the stream, and the stream is left as it was."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError

from tests.cloud.engines import streams_engine

ROLE = "arn:aws:iam::123456789012:role/stream-role"


@pytest.fixture
def engine(tmp_path):
    yield from streams_engine(tmp_path, b"x" * 300)


def test_creating_a_stream_that_exists_is_resource_already_exists(engine):
    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    engine.create_stream({"streamId": "s", "files": files, "roleArn": ROLE})
    with pytest.raises(ControlError) as e:
        engine.create_stream({"streamId": "s", "files": files, "roleArn": ROLE, "description": "again"})
    assert (e.value.kind, e.value.status, e.value.message) == (
        "ResourceAlreadyExistsException", 409, "Stream s already exists")
    info = engine.describe_stream("s")["streamInfo"]
    assert info["streamVersion"] == 1 and "description" not in info


def test_a_stream_created_again_past_version_65535_is_limit_exceeded(engine):
    """A stream created again under the id of a deleted one continues its versions; past 65535
    (the highest version the MQTT API's "s" carries here) CreateStream is LimitExceededException
    (HTTP 410), naming the stream, and the stream stays deleted."""
    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    engine.create_stream({"streamId": "s", "files": files, "roleArn": ROLE})
    row = dict(engine.db.get_stream("s"))
    row["version"] = 65535
    engine.db.put_stream(row, None)
    engine.delete_stream("s")
    with pytest.raises(ControlError) as e:
        engine.create_stream({"streamId": "s", "files": files, "roleArn": ROLE})
    assert (e.value.kind, e.value.status, e.value.message) == (
        "LimitExceededException", 410, "Stream s has reached version 65535")
    with pytest.raises(ControlError) as e:
        engine.describe_stream("s")
    assert e.value.kind == "ResourceNotFoundException"
