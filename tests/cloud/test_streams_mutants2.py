"""tools/fotatools/cloud/streams.py's CreateStream and UpdateStream: AWS's `files` is an array
of StreamFile objects ({fileId, s3Location}); an entry that is not an object is refused with
InvalidRequestException naming it, and nothing is created or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.cloud.jobs import ControlError

from tests.cloud.engines import streams_engine

ROLE = "arn:aws:iam::123456789012:role/r"
GOOD = {"fileId": 7, "s3Location": {"bucket": "bucket", "key": "f.bin"}}
NOT_OBJECTS = ["f.bin", 7, None, [7, {"bucket": "bucket", "key": "f.bin"}], True]


@pytest.fixture()
def engine(tmp_path: Path):
    yield from streams_engine(tmp_path, b"data")


@pytest.mark.parametrize("entry", NOT_OBJECTS)
def test_create_stream_refuses_a_file_entry_that_is_not_an_object(engine, entry):
    with pytest.raises(ControlError) as e:
        engine.create_stream({"streamId": "s1", "roleArn": ROLE, "files": [GOOD, entry]})
    assert (e.value.kind, e.value.message) == (
        "InvalidRequestException", "files[1] must be an object with fileId and s3Location")
    with pytest.raises(ControlError, match="does not exist"):
        engine.describe_stream("s1")
    assert engine.create_stream({"streamId": "s1", "roleArn": ROLE, "files": [GOOD]})["streamVersion"] == 1


@pytest.mark.parametrize("entry", NOT_OBJECTS)
def test_update_stream_refuses_a_file_entry_that_is_not_an_object(engine, entry):
    engine.create_stream({"streamId": "s1", "roleArn": ROLE, "files": [GOOD]})
    with pytest.raises(ControlError) as e:
        engine.update_stream({"streamId": "s1", "files": [entry]})
    assert (e.value.kind, e.value.message) == (
        "InvalidRequestException", "files[0] must be an object with fileId and s3Location")
    info = engine.describe_stream("s1")["streamInfo"]
    assert info["streamVersion"] == 1 and [f["fileId"] for f in info["files"]] == [7]
