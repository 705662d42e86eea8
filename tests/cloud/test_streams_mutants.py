"""The stand-in's streams (tools/fotatools/cloud/streams.py), in process: CreateStream's `files`
when it is not a list, and the ETag of an object read once while the object stays the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud import streams
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError
from fotatools.cloud.store import ObjectStore
from fotatools.cloud.streams import StreamsEngine

DATA = bytes(range(256)) * 4  # four blocks of 256
ROLE = "arn:aws:iam::123456789012:role/r"
FILE = {"fileId": 7, "s3Location": {"bucket": "bucket", "key": "f.bin"}}


@pytest.fixture()
def world(tmp_path: Path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    store.put("bucket", "f.bin", DATA)
    sent: list[tuple[str, Any]] = []
    engine = StreamsEngine(db, store, publish=lambda topic, payload: sent.append((topic, json.loads(payload))))
    yield engine, store, sent
    db.close()


@pytest.mark.parametrize("files", [None, FILE, {"0": FILE}, "x", "files", 5, (FILE,)])
def test_files_that_are_not_a_list_are_refused(world, files):
    # AWS CreateStream: files is an array of 1 to 50 StreamFile objects
    engine = world[0]
    with pytest.raises(ControlError, match=r"^files must be a list of 1-50 files$") as e:
        engine.create_stream({"streamId": "s", "roleArn": ROLE, "files": files})
    assert e.value.kind == "InvalidRequestException"
    assert engine.list_streams({})["streams"] == []


def test_an_unchanged_object_is_read_for_its_etag_once(world, monkeypatch):
    engine, store, sent = world
    reads: list[Path] = []
    md5 = streams._md5

    def counted(path: Path) -> str:
        reads.append(path)
        return md5(path)

    monkeypatch.setattr(streams, "_md5", counted)
    engine.create_stream({"streamId": "s", "roleArn": ROLE, "files": [FILE]})
    assert len(reads) == 1
    for block in range(4):  # a device reading the file block by block
        sent.clear()
        engine.handle("$aws/things/dev/streams/s/get/json", json.dumps({"f": 7, "l": 256, "o": block, "n": 1}).encode())
        [(topic, body)] = sent
        assert topic.endswith("/data/json") and body["i"] == block
    assert len(reads) == 1
    # the object replaced (another size): read again, and the stream no longer matches it
    store.put("bucket", "f.bin", DATA + b"more")
    sent.clear()
    engine.handle("$aws/things/dev/streams/s/get/json", json.dumps({"f": 7, "l": 256, "o": 0, "n": 1}).encode())
    [(topic, body)] = sent
    assert topic.endswith("/rejected/json") and body["code"] == "ETagMismatch"
    assert len(reads) == 2
