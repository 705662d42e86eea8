"""The stand-in's GetStream (tools/fotatools/cloud/streams.py), in process: each field of a
request on both sides of its bounds and of the wrong type, in JSON and in CBOR, and what
comes back for a good one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud import cbor
from fotatools.cloud.streams import OUT_OF_RANGE

from tests.cloud.engines import streams_engine

DATA = bytes(range(256)) * 4 + b"tail"  # 1028 bytes: four blocks of 256 and one of 4


@pytest.fixture()
def engine(tmp_path: Path):
    yield from streams_engine(tmp_path, DATA, file_id=7, record=True)


def get(engine, fmt: str = "json", **req: Any) -> list[tuple[str, Any]]:
    engine.sent.clear()
    body = {"c": "t", "s": 1, "f": 7, "l": 256, "n": 1, **req}
    body = {k: v for k, v in body.items() if v is not None}
    payload = json.dumps(body).encode() if fmt == "json" else cbor.dumps(body)
    engine.handle(f"$aws/things/dev/streams/s1/get/{fmt}", payload)
    return list(engine.sent)


def refusal(engine, fmt: str = "json", **req: Any) -> tuple[str, str] | None:
    (topic, body), = get(engine, fmt, **req)
    if topic.endswith(f"/rejected/{fmt}"):
        assert body["o"] == body["code"] and body["m"] == body["message"] and body["c"] == "t"
        return body["o"], body["m"]
    assert topic == f"$aws/things/dev/streams/s1/data/{fmt}"
    return None


@pytest.mark.parametrize("fmt", ["json", "cbor"])
def test_each_field_of_the_wrong_type_is_named(engine, fmt):
    code = "InvalidRequest" if fmt == "json" else "InvalidCbor"
    for field, what in [("s", "stream version"), ("f", "file id"), ("l", "block size"),
                        ("o", "block offset"), ("n", "number of blocks")]:
        assert refusal(engine, fmt, **{field: "1"}) == (code, f'"{field}" ({what}) must be an integer')
        assert refusal(engine, fmt, **{field: True}) == (code, f'"{field}" ({what}) must be an integer')


def test_each_bound_of_a_request_both_sides(engine):
    assert refusal(engine, f=None) == ("InvalidRequest", '"f" (file id) is required')
    assert refusal(engine, l=None) == ("InvalidRequest", '"l" (block size) is required')
    assert refusal(engine, f=-1) == ("InvalidRequest", '"f" (file id) must be 0-255')
    assert refusal(engine, f=256) == ("InvalidRequest", '"f" (file id) must be 0-255')
    assert refusal(engine, f=0)[0] == "ResourceNotFound" and refusal(engine, f=255)[0] == "ResourceNotFound"
    assert refusal(engine, l=255) == ("BlockSizeOutOfBounds", "The block size 255 is out of bounds (256-131072)")
    assert refusal(engine, l=131073) == ("BlockSizeOutOfBounds",
                                         "The block size 131073 is out of bounds (256-131072)")
    assert refusal(engine, l=256) is None and refusal(engine, l=131072) is None
    assert refusal(engine, o=-1) == ("OffsetOutOfBounds", "The block offset -1 is out of bounds (0-98304)")
    assert refusal(engine, o=98305) == ("OffsetOutOfBounds", "The block offset 98305 is out of bounds (0-98304)")
    assert refusal(engine, o=0) is None and refusal(engine, o=4) is None
    assert refusal(engine, o=5)[0] != "OffsetOutOfBounds" and refusal(engine, o=98304)[0] != "OffsetOutOfBounds"
    assert refusal(engine, n=-1) == ("BlockCountLimitExceeded",
                                     "The number of blocks -1 is out of bounds (0-98304)")
    assert refusal(engine, n=98305) == ("BlockCountLimitExceeded",
                                        "The number of blocks 98305 is out of bounds (0-98304)")
    assert refusal(engine, n=98304) == ("InvalidRequest", OUT_OF_RANGE)  # within the limit, past the file
    assert [b["i"] for _, b in get(engine, n=5)] == [0, 1, 2, 3, 4]
    assert refusal(engine, n=0)[1] == OUT_OF_RANGE
    assert refusal(engine, s=2)[0] == "VersionMismatch"


def test_the_blocks_a_good_request_gets(engine):
    sent = get(engine, n=2, o=3)
    assert [(t, b["f"], b["i"], b["l"]) for t, b in sent] == [
        ("$aws/things/dev/streams/s1/data/json", 7, 3, 256), ("$aws/things/dev/streams/s1/data/json", 7, 4, 4)]
    import base64

    assert base64.b64decode(sent[0][1]["p"]) == DATA[768:1024] and base64.b64decode(sent[1][1]["p"]) == b"tail"
    sent = get(engine, "cbor", l=512, o=1)
    assert [(b["f"], b["i"], b["l"], bytes(b["p"])) for _, b in sent] == [(7, 1, 512, DATA[512:1024])]
    assert all(b["c"] == "t" for _, b in sent)


def test_a_stream_goes_up_to_version_65535_and_no_further(engine):
    from fotatools.cloud.jobs import ControlError

    row = dict(engine.db.get_stream("s1"))
    row["version"] = 65534
    engine.db.put_stream(row, None)
    assert engine.update_stream({"streamId": "s1", "description": "last"})["streamVersion"] == 65535
    with pytest.raises(ControlError, match="Stream s1 has reached version 65535") as e:
        engine.update_stream({"streamId": "s1", "description": "one more"})
    assert e.value.kind == "LimitExceededException"
    assert engine.describe_stream("s1")["streamInfo"]["streamVersion"] == 65535
    assert refusal(engine, s=65535) is None and refusal(engine, s=65534)[0] == "VersionMismatch"


def test_a_stream_id_or_bucket_with_a_newline_is_refused(engine):
    from fotatools.cloud.jobs import ControlError

    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    for sid in ("s\n", "s" * 129, ""):
        with pytest.raises(ControlError):
            engine.create_stream({"streamId": sid, "files": files, "roleArn": "arn:aws:iam::123456789012:role/r"})
    engine.create_stream({"streamId": "s" * 128, "files": files, "roleArn": "arn:aws:iam::123456789012:role/r"})
    with pytest.raises(ControlError):
        engine.create_stream({"streamId": "s2", "roleArn": "arn:aws:iam::123456789012:role/r",
                              "files": [{"fileId": 1, "s3Location": {"bucket": "bucket\n", "key": "f.bin"}}]})


def test_list_streams_pages_both_ways_and_its_bounds(engine):
    from fotatools.cloud.jobs import ControlError

    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    for i in range(2, 6):
        engine.clock = lambda i=i: 4_000_000_000.0 + i  # after s1, made at the time of the test
        engine.create_stream({"streamId": f"s{i}", "files": files, "roleArn": "arn:aws:iam::123456789012:role/r"})
    ids = lambda out: [s["streamId"] for s in out["streams"]]  # noqa: E731
    assert ids(engine.list_streams({})) == ["s1", "s2", "s3", "s4", "s5"]
    assert "nextToken" not in engine.list_streams({})
    first = engine.list_streams({"maxResults": 2})
    assert ids(first) == ["s1", "s2"] and first["nextToken"] == "2"
    second = engine.list_streams({"maxResults": 2, "nextToken": first["nextToken"]})
    assert ids(second) == ["s3", "s4"] and second["nextToken"] == "4"
    third = engine.list_streams({"maxResults": 2, "nextToken": "4"})
    assert ids(third) == ["s5"] and "nextToken" not in third
    exact = engine.list_streams({"maxResults": 5})
    assert len(ids(exact)) == 5 and "nextToken" not in exact
    assert ids(engine.list_streams({"maxResults": 1, "ascendingOrder": False})) == ["s5"]
    assert ids(engine.list_streams({"maxResults": 250})) == ["s1", "s2", "s3", "s4", "s5"]
    for bad in (0, 251, True, "5"):
        with pytest.raises(ControlError, match="maxResults must be an integer 1-250"):
            engine.list_streams({"maxResults": bad})
    with pytest.raises(ControlError, match="ascendingOrder must be a boolean"):
        engine.list_streams({"ascendingOrder": 1})
    for bad in ("x", "-1", 2):
        with pytest.raises(ControlError, match="nextToken is not one this service gave"):
            engine.list_streams({"nextToken": bad})


def test_bitmap_helpers_bit_by_bit():
    from fotatools.cloud.streams import _last_bit, _set_bits

    assert _last_bit(b"") is None and _last_bit(b"\0\0") is None
    assert _last_bit(b"\x01") == 0 and _last_bit(b"\x80") == 7 and _last_bit(b"\x01\x00") == 0
    assert _last_bit(b"\x00\x01") == 8 and _last_bit(b"\xff\x40") == 14 and _last_bit(b"\x00\x00\x80") == 23
    assert _set_bits(b"\x05\x80", 10, 10) == [10, 12, 25]
    assert _set_bits(b"\xff\xff", 0, 3) == [0, 1, 2] and _set_bits(b"\xff\xff", 0, 9) == list(range(9))
    assert _set_bits(b"\x00\x02", 0, 1) == [9] and _set_bits(b"\x01", 0, 0) == [] and _set_bits(b"", 0, 5) == []


def test_a_stream_description_empty_or_too_long(engine):
    from fotatools.cloud.jobs import ControlError

    files = [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    role = "arn:aws:iam::123456789012:role/r"
    engine.create_stream({"streamId": "e", "files": files, "roleArn": role, "description": ""})
    assert "description" not in engine.describe_stream("e")["streamInfo"]
    engine.create_stream({"streamId": "d", "files": files, "roleArn": role, "description": "x" * 2028})
    assert engine.describe_stream("d")["streamInfo"]["description"] == "x" * 2028
    for bad in ("x" * 2029, 5, "a\x00b"):
        with pytest.raises(ControlError):
            engine.create_stream({"streamId": "f", "files": files, "roleArn": role, "description": bad})


def test_the_device_describe_has_d_only_for_a_stream_with_a_description(engine):
    files = [{"fileId": 3, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]
    role = "arn:aws:iam::123456789012:role/r"
    engine.create_stream({"streamId": "named", "files": files, "roleArn": role, "description": "the app"})
    for sid, want in (("s1", {"c": "t", "s": 1, "r": [{"f": 7, "z": len(DATA)}]}),
                      ("named", {"c": "t", "s": 1, "d": "the app", "r": [{"f": 3, "z": len(DATA)}]})):
        engine.sent.clear()
        engine.handle(f"$aws/things/dev/streams/{sid}/describe/json", b'{"c": "t"}')
        assert engine.sent == [(f"$aws/things/dev/streams/{sid}/description/json", want)]


def test_describe_stream_gives_each_files_s3_version_when_it_has_one(engine):
    engine.create_stream({"streamId": "v", "roleArn": "arn:aws:iam::123456789012:role/r", "files": [
        {"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin", "version": "v7"}},
        {"fileId": 2, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]})
    files = engine.describe_stream("v")["streamInfo"]["files"]
    assert files == [{"fileId": 1, "s3Location": {"bucket": "bucket", "key": "f.bin", "version": "v7"}},
                     {"fileId": 2, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]


@pytest.mark.parametrize("tail", ["get", "get/cbor/extra", "describe/cbor/extra", "get/json/extra"])
def test_a_topic_not_ending_in_its_format_is_refused_in_json(engine, tail):
    """Only `.../get/<format>` and `.../describe/<format>` are requests; anything else (no
    format, or a level after it) is refused with InvalidTopic, answered in JSON whatever the
    levels say, with the token of a JSON payload."""
    engine.sent.clear()
    engine.handle(f"$aws/things/dev/streams/s1/{tail}", b'{"c": "t"}')
    (topic, body), = engine.sent
    assert topic == "$aws/things/dev/streams/s1/rejected/json"
    assert body["o"] == "InvalidTopic" and body["c"] == "t"
    assert body["m"] == f"The topic $aws/things/dev/streams/s1/{tail} is not a stream request topic"
