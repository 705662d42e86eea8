"""tools/fotatools/cloud/streams.py: CreateStream's roleArn is 20-2048 characters, as the AWS IoT
API reference gives it (CreateStream, roleArn: "Minimum length of 20. Maximum length of 2048");
both ends, each side."""

from __future__ import annotations

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError
from fotatools.cloud.store import ObjectStore
from fotatools.cloud.streams import StreamsEngine

PREFIX = "arn:aws:iam::123456789012:role/"  # 31 characters


def role(length: int) -> str:
    return (PREFIX + "r" * length)[:length]


def test_a_role_arn_of_20_to_2048_characters_and_no_other(tmp_path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    store.put("bucket", "f.bin", b"x" * 300)
    engine = StreamsEngine(db, store)
    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    try:
        for n in (20, 2048):
            engine.create_stream({"streamId": f"ok{n}", "files": files, "roleArn": role(n)})
            assert engine.describe_stream(f"ok{n}")["streamInfo"]["roleArn"] == role(n)
        for n in (19, 2049):
            with pytest.raises(ControlError) as e:
                engine.create_stream({"streamId": f"bad{n}", "files": files, "roleArn": role(n)})
            assert e.value.kind == "InvalidRequestException"
            assert "roleArn must be a string of 20-2048 characters" in e.value.message
    finally:
        db.close()
