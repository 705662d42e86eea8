"""tools/fotatools/cloud/streams.py: CreateStream's files[].s3Location.bucket is a string of at
least one character, as the AWS IoT API reference gives S3Location ("bucket ... Type: String,
Length Constraints: Minimum length of 1"); a bucket that is a number or a list is refused
with an InvalidRequestException naming the field, and no stream is made."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError

from tests.cloud.engines import streams_engine

ROLE = "arn:aws:iam::123456789012:role/stream-role"


@pytest.fixture
def engine(tmp_path):
    yield from streams_engine(tmp_path, b"x" * 300)


@pytest.mark.parametrize("bucket", [7, ["bucket"], ""])
def test_a_bucket_that_is_not_a_non_empty_string_is_refused(engine, bucket):
    files = [{"fileId": 1, "s3Location": {"bucket": bucket, "key": "f.bin"}}]
    with pytest.raises(ControlError) as e:
        engine.create_stream({"streamId": "s", "files": files, "roleArn": ROLE})
    assert e.value.kind == "InvalidRequestException"
    assert e.value.message == "files[0].s3Location needs a bucket and a key (strings)"
    with pytest.raises(ControlError) as e:
        engine.describe_stream("s")
    assert e.value.kind == "ResourceNotFoundException"


def test_a_bucket_string_is_taken(engine):
    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    engine.create_stream({"streamId": "s", "files": files, "roleArn": ROLE})
    [f] = engine.describe_stream("s")["streamInfo"]["files"]
    assert f["s3Location"]["bucket"] == "bucket"
