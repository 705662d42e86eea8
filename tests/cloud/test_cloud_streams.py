"""AWS IoT MQTT-based file delivery ("streams") of the local stand-in: the control plane and
DescribeStream / GetStream over MQTT, played by paho devices over TLS."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest
from tests.cloud.conftest import Device, unique

from fotatools.backend import BackendError
from fotatools.cloud import cbor, daemon
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.streams import MAX_BITMAP, OUT_OF_RANGE

BLOCK = 1024
MAIN_SIZE = 10 * BLOCK - 240  # ten blocks, the last one short
DOC_SIZE = 50 * 256 - 100  # the developer guide's bitmap example: blocks of 256 bytes


def blob(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def upload(backend: LocalBackend, folder: Path, data: bytes, key: str | None = None) -> str:
    key = key or f"{unique('obj')}/file.bin"
    path = folder / unique("blob")
    path.write_bytes(data)
    backend.upload(path, key)
    return key


def stream_device(backend: LocalBackend, folder: Path, prefix: str = "s") -> Device:
    name = unique(prefix)
    d = Device(backend.provision(name), folder / name, subscribe=None)
    subscribe_replies(d)
    return d


def subscribe_replies(d: Device) -> None:
    """The reply topics of every stream of the thing (not its own requests)."""
    for reply in ("description", "data", "rejected"):
        assert d.subscribe(f"$aws/things/{d.name}/streams/+/{reply}/+") == [1]


def exchange(d: Device, topic_tail: str, payload: Any, fence: str) -> list[tuple[str, Any]]:
    """Publish a request on $aws/things/<d>/streams/<topic_tail>; return every message that
    answered it, in order (a DescribeStream of stream `fence` published after it marks the end:
    the service answers in order)."""
    prefix = f"$aws/things/{d.name}/streams/"
    d.clear()
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    d.publish(prefix + topic_tail, payload)
    token = unique("fence")
    d.publish(f"{prefix}{fence}/describe/json", json.dumps({"c": token}))
    d.take(lambda t, b: t.endswith("/description/json") and isinstance(b, dict) and b.get("c") == token)
    with d.cond:
        out = [(t[len(prefix):], b) for t, b in d.messages]
        d.messages.clear()
    return out


def fence(d: Device, sid: str) -> list[tuple[str, Any]]:
    """Every message d received before the answer to a DescribeStream it publishes now (the
    service answers in order: anything it sent d earlier is in the list), and forget them."""
    prefix = f"$aws/things/{d.name}/streams/"
    token = unique("fence")
    d.publish(f"{prefix}{sid}/describe/json", json.dumps({"c": token}))
    d.take(lambda t, b: t.endswith("/description/json") and isinstance(b, dict) and b.get("c") == token)
    with d.cond:
        out = [(t, b) for t, b in d.messages]
        d.messages.clear()
    return out


@pytest.fixture(scope="module")
def world(backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory):
    """One device and its streams: `main` (file 0: ten 1 KB blocks, the last short; file 7:
    the developer guide's 50 blocks of 256 bytes) and `changed` (its object replaced later)."""
    folder = tmp_path_factory.mktemp("streams")
    main0, main7 = blob(MAIN_SIZE, 1), blob(DOC_SIZE, 2)
    k0, k7 = upload(backend, folder, main0), upload(backend, folder, main7)
    sid = unique("main")
    assert backend.create_stream(sid, [(0, k0), (7, k7)], description="firmware v2 for the test") == 1
    kc = upload(backend, folder, b"x" * 2000)
    changed = unique("changed")
    backend.create_stream(changed, [(0, kc)])
    upload(backend, folder, b"y" * 2000, key=kc)  # same size, other bytes: another ETag
    d = stream_device(backend, folder)
    yield {"d": d, "sid": sid, "files": {0: main0, 7: main7}, "changed": changed, "keys": (k0, k7),
           "folder": folder}
    d.close()


def blocks_of(replies: list[tuple[str, Any]], sid: str) -> list[dict[str, Any]]:
    assert all(t == f"{sid}/data/json" for t, _ in replies), [t for t, _ in replies]
    return [b for _, b in replies]


# ------------------------------------------------------------------------------------------
# DescribeStream and GetStream
# ------------------------------------------------------------------------------------------
def test_describe(world, backend):
    d, sid = world["d"], world["sid"]
    [(topic, body)] = exchange(d, f"{sid}/describe/json", {"c": "tok-1"}, sid)
    assert topic == f"{sid}/description/json"
    assert body == {"c": "tok-1", "s": 1, "d": "firmware v2 for the test",
                    "r": [{"f": 0, "z": MAIN_SIZE}, {"f": 7, "z": DOC_SIZE}]}
    # no client token: none comes back; an empty payload is an empty request
    [(_, body)] = exchange(d, f"{sid}/describe/json", b"", sid)
    assert "c" not in body and body["s"] == 1
    info = backend.describe_stream(sid)
    assert info["streamId"] == sid and info["streamVersion"] == 1
    assert info["streamArn"] == f"arn:aws:iot:local:000000000000:stream/{sid}"
    assert info["files"] == [{"fileId": 0, "s3Location": {"bucket": backend.bucket, "key": world["keys"][0]}},
                             {"fileId": 7, "s3Location": {"bucket": backend.bucket, "key": world["keys"][1]}}]
    assert info["description"] == "firmware v2 for the test" and info["createdAt"] <= info["lastUpdatedAt"]


def test_get_a_run_of_blocks_with_the_short_last_one(world):
    d, sid, data = world["d"], world["sid"], world["files"][0]
    got = blocks_of(exchange(d, f"{sid}/get/json", {"c": "run", "s": 1, "f": 0, "l": BLOCK, "o": 6, "n": 4}, sid),
                    sid)
    assert [b["i"] for b in got] == [6, 7, 8, 9]
    assert all(set(b) == {"c", "f", "l", "i", "p"} and b["c"] == "run" and b["f"] == 0 for b in got)
    assert [b["l"] for b in got] == [BLOCK, BLOCK, BLOCK, MAIN_SIZE - 9 * BLOCK]
    assert b"".join(base64.b64decode(b["p"]) for b in got) == data[6 * BLOCK:]
    # the whole file in runs, as a device reads it; "o" defaults to 0
    got = blocks_of(exchange(d, f"{sid}/get/json", {"f": 0, "l": BLOCK, "n": 10}, sid), sid)
    assert "c" not in got[0]
    assert b"".join(base64.b64decode(b["p"]) for b in got) == data


def test_get_with_a_bitmap(world):
    d, sid, data = world["d"], world["sid"], world["files"][7]
    # The developer guide's example: blocks 20, 21, 24 and 43 of 256 bytes, offset 20, so bits
    # 0, 1, 4 and 23: the bytes 0x13 0x00 0x80.
    req = {"c": "bm", "s": 1, "l": 256, "f": 7, "o": 20, "n": 32, "b": base64.b64encode(b"\x13\x00\x80").decode()}
    got = blocks_of(exchange(d, f"{sid}/get/json", req, sid), sid)
    assert [b["i"] for b in got] == [20, 21, 24, 43]
    for b in got:
        assert base64.b64decode(b["p"]) == data[b["i"] * 256:(b["i"] + 1) * 256] and b["l"] == 256
    # "n" caps how many of the selected blocks come; the short last block (49) by bitmap
    req.update(n=2, c="bm2")
    assert [b["i"] for b in blocks_of(exchange(d, f"{sid}/get/json", req, sid), sid)] == [20, 21]
    bits = bytearray(7)
    bits[49 // 8] |= 1 << (49 % 8)
    got = blocks_of(exchange(d, f"{sid}/get/json", {"f": 7, "l": 256, "b": base64.b64encode(bits).decode()}, sid),
                    sid)
    assert [(b["i"], b["l"]) for b in got] == [(49, DOC_SIZE - 49 * 256)]
    assert base64.b64decode(got[0]["p"]) == data[49 * 256:]


def test_one_request_is_answered_with_at_most_128_kb(backend, world):
    d = world["d"]
    data = blob(3 * 65536 + 8192, 3)
    sid = unique("big")
    backend.create_stream(sid, [(0, upload(backend, world["folder"], data))])
    got = blocks_of(exchange(d, f"{sid}/get/json", {"f": 0, "l": 65536, "n": 4}, sid), sid)
    assert [b["i"] for b in got] == [0, 1]  # 128 KB; the device asks again for the rest
    got = blocks_of(exchange(d, f"{sid}/get/json", {"f": 0, "l": 65536, "o": 2, "n": 2}, sid), sid)
    assert [(b["i"], b["l"]) for b in got] == [(2, 65536), (3, 8192)]
    # neither "n" nor "b": 128 KB of blocks from "o"
    got = blocks_of(exchange(d, f"{sid}/get/json", {"f": 0, "l": 32768}, sid), sid)
    assert [b["i"] for b in got] == [0, 1, 2, 3]
    assert b"".join(base64.b64decode(b["p"]) for b in got) == data[:131072]
    # the largest block, in JSON (base64: 171 KB in one message) and in CBOR
    token = "t" * 64
    [(_, big)] = exchange(d, f"{sid}/get/json", {"c": token, "f": 0, "l": 131072, "o": 1, "n": 1}, sid)
    assert (big["i"], big["l"], base64.b64decode(big["p"])) == (1, 65536 + 8192, data[131072:])
    [(_, big)] = exchange(d, f"{sid}/get/cbor", cbor.dumps({"c": token, "f": 0, "l": 131072, "n": 1}), sid)
    assert cbor.loads(big)["p"] == data[:131072]


def test_cbor(world):
    d, sid, data = world["d"], world["sid"], world["files"][0]
    # DescribeStream {"c": "t"}, encoded by hand: the answer's bytes, as RFC 8949 spells them
    [(topic, body)] = exchange(d, f"{sid}/describe/cbor", bytes.fromhex("a1 61 63 61 74"), sid)
    assert topic == f"{sid}/description/cbor"
    desc = "firmware v2 for the test".encode()
    expected = (bytes.fromhex("a4 61 63 61 74 61 73 01 61 64") + bytes([0x78, len(desc)]) + desc
                + bytes.fromhex("61 72 82 a2 61 66 00 61 7a 19") + MAIN_SIZE.to_bytes(2, "big")
                + bytes.fromhex("a2 61 66 07 61 7a 19") + DOC_SIZE.to_bytes(2, "big"))
    assert body == expected
    # GetStream {"c": "g", "f": 0, "l": 1024, "o": 9, "n": 1}: the short last block as a byte string
    req = bytes.fromhex("a5 61 63 61 67 61 66 00 61 6c 19 04 00 61 6f 09 61 6e 01")
    [(topic, body)] = exchange(d, f"{sid}/get/cbor", req, sid)
    assert topic == f"{sid}/data/cbor"
    tail = data[9 * BLOCK:]
    assert cbor.loads(body) == {"c": "g", "f": 0, "l": len(tail), "i": 9, "p": tail}
    assert body.endswith(bytes([0x61, 0x70, 0x59]) + len(tail).to_bytes(2, "big") + tail)
    # the bitmap as a byte string: blocks 1 and 3
    req = cbor.dumps({"c": "b", "f": 0, "l": BLOCK, "b": b"\x0a"})
    got = [cbor.loads(b) for _, b in exchange(d, f"{sid}/get/cbor", req, sid)]
    assert [(b["i"], b["p"]) for b in got] == [(1, data[BLOCK:2 * BLOCK]), (3, data[3 * BLOCK:4 * BLOCK])]
    # errors come back as CBOR, with both spellings of the fields
    [(topic, body)] = exchange(d, f"{sid}/get/cbor", cbor.dumps({"c": "e", "f": 0, "l": 100}), sid)
    assert topic == f"{sid}/rejected/cbor"
    rej = cbor.loads(body)
    assert rej["o"] == rej["code"] == "BlockSizeOutOfBounds" and rej["c"] == rej["clientToken"] == "e"


# ------------------------------------------------------------------------------------------
# every error code, one case each
# ------------------------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# (case, topic tail ("{sid}" and "{changed}" filled in), payload, code, echoes the token)
REJECTIONS: list[tuple[str, str, Any, str, bool]] = [
    ("unknown operation", "{sid}/fetch/json", {"c": "x"}, "InvalidTopic", True),
    ("unknown format", "{sid}/get/xml", {"c": "x"}, "InvalidTopic", True),
    ("extra topic level", "{sid}/get/json/more", {"c": "x"}, "InvalidTopic", True),
    ("not JSON", "{sid}/get/json", b'{"c": "x", ', "InvalidJson", False),
    ("not UTF-8", "{sid}/describe/json", b"\xff\xfe", "InvalidJson", False),
    ("not CBOR", "{sid}/get/cbor", bytes.fromhex("a2 61 63"), "InvalidCbor", False),
    ("CBOR with trailing bytes", "{sid}/describe/cbor", bytes.fromhex("a0 00"), "InvalidCbor", False),
    ("CBOR nested too deeply", "{sid}/describe/cbor", b"\x81" * 1000 + b"\xa0", "InvalidCbor", False),
    ("CBOR text bitmap", "{sid}/get/cbor", cbor.dumps({"c": "x", "f": 0, "l": 1024, "b": "0x0F"}), "InvalidCbor",
     True),
    ("CBOR text block size", "{sid}/get/cbor", cbor.dumps({"c": "x", "f": 0, "l": "1024", "n": 1}), "InvalidCbor",
     True),
    ("not a map", "{sid}/get/json", b"[1, 2]", "InvalidRequest", False),
    ("token too long", "{sid}/describe/json", {"c": "t" * 65}, "InvalidRequest", False),
    ("token not a string", "{sid}/get/json", {"c": 5, "f": 0, "l": 1024, "n": 1}, "InvalidRequest", False),
    ("no file id", "{sid}/get/json", {"c": "x", "l": 1024, "n": 1}, "InvalidRequest", True),
    ("file id a string", "{sid}/get/json", {"c": "x", "f": "0", "l": 1024, "n": 1}, "InvalidRequest", True),
    ("file id over 255", "{sid}/get/json", {"c": "x", "f": 256, "l": 1024, "n": 1}, "InvalidRequest", True),
    ("no block size", "{sid}/get/json", {"c": "x", "f": 0, "n": 1}, "InvalidRequest", True),
    ("block size a float", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024.0, "n": 1}, "InvalidRequest", True),
    ("offset a boolean", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "o": True}, "InvalidRequest", True),
    ("version a string", "{sid}/get/json", {"c": "x", "s": "1", "f": 0, "l": 1024, "n": 1},
     "InvalidRequest", True),
    ("bitmap not base64", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "b": "0x13!"}, "InvalidRequest", True),
    ("bitmap a number", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "b": 19}, "InvalidRequest", True),
    ("bitmap selects nothing", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "b": b64(b"\0\0")},
     "InvalidRequest", True),
    ("run past the end", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "o": 8, "n": 3}, "InvalidRequest", True),
    ("default run past the end", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024}, "InvalidRequest", True),
    ("bitmap past the end", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "o": 2, "b": b64(b"\x00\x01")},
     "InvalidRequest", True),
    ("unknown stream", "nosuchstream/describe/json", {"c": "x"}, "ResourceNotFound", True),
    ("unknown stream (get)", "nosuchstream/get/json", {"c": "x", "f": 0, "l": 1024, "n": 1},
     "ResourceNotFound", True),
    ("file not in the stream", "{sid}/get/json", {"c": "x", "f": 3, "l": 1024, "n": 1}, "ResourceNotFound", True),
    ("old version", "{sid}/get/json", {"c": "x", "s": 2, "f": 0, "l": 1024, "n": 1}, "VersionMismatch", True),
    ("block too small", "{sid}/get/json", {"c": "x", "f": 0, "l": 255, "n": 1}, "BlockSizeOutOfBounds", True),
    ("block too large", "{sid}/get/json", {"c": "x", "f": 0, "l": 131073, "n": 1}, "BlockSizeOutOfBounds", True),
    ("negative offset", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "o": -1, "n": 1},
     "OffsetOutOfBounds", True),
    ("offset too large", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "o": 98305, "n": 1},
     "OffsetOutOfBounds", True),
    ("negative count", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "n": -1}, "BlockCountLimitExceeded", True),
    ("count too large", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "n": 98305},
     "BlockCountLimitExceeded", True),
    ("bitmap too large", "{sid}/get/json", {"c": "x", "f": 0, "l": 1024, "b": b64(b"\x01" * (MAX_BITMAP + 1))},
     "BlockBitmapLimitExceeded", True),
    ("object replaced", "{changed}/get/json", {"c": "x", "f": 0, "l": 1024, "n": 1}, "ETagMismatch", True),
]


@pytest.mark.parametrize("case,tail,payload,code,echo", REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejected(world, case, tail, payload, code, echo):
    d, sid = world["d"], world["sid"]
    tail = tail.format(sid=sid, changed=world["changed"])
    fmt = "cbor" if tail.endswith("/cbor") else "json"
    replies = exchange(d, tail, payload, sid)
    [(topic, body)] = replies
    stream = tail.split("/")[0]
    assert topic == f"{stream}/rejected/{fmt}"
    if fmt == "cbor":
        body = cbor.loads(body)
    assert body["o"] == body["code"] == code
    assert isinstance(body["m"], str) and body["m"] and body["m"] == body["message"]
    if echo:
        assert body["c"] == body["clientToken"] == "x"
    else:
        assert "c" not in body and "clientToken" not in body
    if "past the end" in case:
        assert body["m"] == OUT_OF_RANGE  # AWS IoT's words


def test_a_failure_inside_is_an_internal_error(tmp_path):
    # the service's database gone: the device still hears why, as InternalError
    from fotatools.cloud.db import Database
    from fotatools.cloud.store import ObjectStore
    from fotatools.cloud.streams import StreamsEngine

    db = Database(tmp_path / "cloud.db")
    sent: list[tuple[str, Any]] = []
    engine = StreamsEngine(db, ObjectStore(tmp_path / "store", b"k" * 32),
                           publish=lambda topic, payload: sent.append((topic, json.loads(payload))))
    engine.handle("$aws/things/t1/streams/s1/describe/json", b'{"c": "i"}')
    assert sent[0][1]["o"] == "ResourceNotFound"
    db.close()
    engine.handle("$aws/things/t1/streams/s1/get/json", b'{"c": "i", "f": 0, "l": 256}')
    assert sent[1] == ("$aws/things/t1/streams/s1/rejected/json",
                       {"clientToken": "i", "c": "i", "code": "InternalError", "o": "InternalError",
                        "message": "An internal error occurred", "m": "An internal error occurred"})


def test_replies_are_not_requests(world):
    # only the service publishes on a thing's reply topics: the broker drops a device's publish
    # there (it does not even come back to the device, which is subscribed), nothing answers it
    d, sid = world["d"], world["sid"]
    for tail in ("data/json", "description/json", "rejected/cbor"):
        assert exchange(d, f"{sid}/{tail}", {"c": "x"}, sid) == []


# ------------------------------------------------------------------------------------------
# things, access control
# ------------------------------------------------------------------------------------------
def test_things_only_get_answers_on_their_own_topics(backend, world, tmp_path):
    sid = world["sid"]
    a = stream_device(backend, tmp_path, "a")
    b = stream_device(backend, tmp_path, "b")
    try:
        assert a.subscribe(f"$aws/things/{b.name}/streams/#") == [128]
        assert a.subscribe(f"$aws/things/{b.name}/streams/{sid}/data/json") == [128]
        assert a.subscribe("$aws/things/+/streams/#") == [128]
        # A's request on B's topic is dropped by the broker: nobody is answered
        a.publish(f"$aws/things/{b.name}/streams/{sid}/get/json",
                  json.dumps({"c": "from-a", "f": 0, "l": BLOCK, "n": 2}))
        mine = exchange(a, f"{sid}/get/json", {"c": "a", "f": 0, "l": BLOCK, "n": 1}, sid)
        assert [(t, m["c"]) for t, m in mine] == [(f"{sid}/data/json", "a")]
        assert fence(b, sid) == []  # B's own answer came, and nothing before it
        theirs = exchange(b, f"{sid}/get/json", {"c": "b", "f": 0, "l": BLOCK, "o": 1, "n": 1}, sid)
        assert [(t, m["c"], m["i"]) for t, m in theirs] == [(f"{sid}/data/json", "b", 1)]
        assert fence(a, sid) == []  # nothing of B's reached A before A's next answer
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------------------------
# the control plane
# ------------------------------------------------------------------------------------------
def test_stream_lifecycle(backend, world, tmp_path):
    d = world["d"]
    k1 = upload(backend, tmp_path, blob(3000, 4))
    sid = unique("life")
    assert backend.create_stream(sid, [(0, k1)]) == 1
    assert "description" not in backend.describe_stream(sid)
    with pytest.raises(BackendError, match="ResourceAlreadyExistsException"):
        backend.create_stream(sid, [(0, k1)])
    listed = backend.call("ListStreams", {})["streams"]
    assert {"streamId": sid, "streamArn": f"arn:aws:iot:local:000000000000:stream/{sid}",
            "streamVersion": 1} in listed
    # UpdateStream: new files, a new version; devices holding the old one are told
    k2 = upload(backend, tmp_path, blob(5000, 5))
    assert backend.update_stream(sid, [(1, k2)], description="second") == 2
    [(_, body)] = exchange(d, f"{sid}/get/json", {"c": "v", "s": 1, "f": 1, "l": 1024, "n": 1}, sid)
    assert body["o"] == "VersionMismatch"
    [(_, body)] = exchange(d, f"{sid}/describe/json", {}, sid)
    assert body == {"s": 2, "d": "second", "r": [{"f": 1, "z": 5000}]}
    # an object replaced under the stream: ETagMismatch until UpdateStream takes it again
    upload(backend, tmp_path, blob(4000, 6), key=k2)
    [(_, body)] = exchange(d, f"{sid}/get/json", {"f": 1, "l": 1024, "n": 1}, sid)
    assert body["o"] == "ETagMismatch"
    assert backend.update_stream(sid) == 3
    [(_, body)] = exchange(d, f"{sid}/describe/json", {}, sid)
    assert body["r"] == [{"f": 1, "z": 4000}] and body["s"] == 3
    got = exchange(d, f"{sid}/get/json", {"f": 1, "l": 1024, "o": 3, "n": 1}, sid)
    assert base64.b64decode(got[0][1]["p"]) == blob(4000, 6)[3072:]
    # DeleteStream; created again under the same id, the stream continues its versions
    backend.delete_stream(sid)
    with pytest.raises(BackendError, match="ResourceNotFoundException"):
        backend.describe_stream(sid)
    with pytest.raises(BackendError, match="ResourceNotFoundException"):
        backend.delete_stream(sid)
    d.clear()
    d.publish(f"$aws/things/{d.name}/streams/{sid}/describe/json", '{"c": "gone"}')
    _, body = d.take(lambda t, b: t.endswith(f"{sid}/rejected/json"))
    assert body["o"] == "ResourceNotFound"
    assert backend.create_stream(sid, [(0, k1)]) == 4
    page = backend.call("ListStreams", {"maxResults": 1, "ascendingOrder": False})
    assert [s["streamId"] for s in page["streams"]] == [sid] and page["nextToken"]
    rest = backend.call("ListStreams", {"maxResults": 250, "ascendingOrder": False,
                                        "nextToken": page["nextToken"]})
    assert sid not in [s["streamId"] for s in rest["streams"]] and len(rest["streams"]) >= 2


@pytest.mark.parametrize("params,error", [
    ({"streamId": "bad id"}, "InvalidRequestException"),
    ({"streamId": "x" * 129}, "InvalidRequestException"),
    ({"files": []}, "InvalidRequestException"),
    ({"files": [{"fileId": i, "s3Location": "{loc}"} for i in range(51)]}, "InvalidRequestException"),
    ({"files": [{"fileId": 256, "s3Location": "{loc}"}]}, "InvalidRequestException"),
    ({"files": [{"fileId": -1, "s3Location": "{loc}"}]}, "InvalidRequestException"),
    ({"files": [{"fileId": 1, "s3Location": "{loc}"}, {"fileId": 1, "s3Location": "{loc}"}]},
     "InvalidRequestException"),
    ({"files": [{"fileId": 0, "s3Location": {"bucket": "fota-firmware", "key": "no/such/object"}}]},
     "ResourceNotFoundException"),
    ({"files": [{"fileId": 0, "s3Location": {"bucket": "Bad_Bucket", "key": "k"}}]}, "InvalidRequestException"),
    ({"files": [{"fileId": 0, "s3Location": {"bucket": "fota-firmware"}}]}, "InvalidRequestException"),
    ({"description": "line\nbreak"}, "InvalidRequestException"),
    ({"description": "d" * 2029}, "InvalidRequestException"),
    ({"roleArn": "arn:short"}, "InvalidRequestException"),
])
def test_create_stream_validation(backend, world, params, error):
    loc = {"bucket": backend.bucket, "key": world["keys"][0]}
    body: dict[str, Any] = {"streamId": unique("v"), "files": [{"fileId": 0, "s3Location": loc}]}
    body.update(json.loads(json.dumps(params).replace('"{loc}"', json.dumps(loc))))
    with pytest.raises(BackendError, match=error):
        backend.call("CreateStream", body)


def test_create_stream_takes_the_limits_and_aws_fields(backend, world):
    loc = {"bucket": backend.bucket, "key": world["keys"][0]}
    sid = unique("ok") + "_" * 117  # 128 characters
    ok = {"streamId": sid, "description": "d" * 2028, "roleArn": "arn:aws:iam::000000000000:role/ota",
          "files": [{"fileId": i, "s3Location": loc} for i in range(206, 256)]}  # 50 files, up to id 255
    r = backend.call("CreateStream", ok)
    assert r == {"streamId": sid, "streamArn": f"arn:aws:iot:local:000000000000:stream/{sid}",
                 "description": "d" * 2028, "streamVersion": 1}
    info = backend.describe_stream(sid)
    assert info["roleArn"] == ok["roleArn"] and len(info["files"]) == 50


def test_streams_survive_a_restart(tmp_path):
    daemon.start(tmp_path, minute=1.0)
    backend = LocalBackend(tmp_path)
    data = blob(2500, 7)
    try:
        creds = backend.provision(unique("r"))
        sid = unique("keep")
        backend.create_stream(sid, [(3, upload(backend, tmp_path, data))], description="kept")
        assert backend.update_stream(sid) == 2
    finally:
        daemon.stop(tmp_path)
    info = daemon.start(tmp_path, minute=1.0)
    try:
        backend = LocalBackend(tmp_path)
        assert backend.describe_stream(sid)["streamVersion"] == 2
        d = Device(creds, tmp_path / "dev", subscribe=None, port=info.mqtt_port)
        subscribe_replies(d)
        [(_, body)] = exchange(d, f"{sid}/describe/json", {"c": "k"}, sid)
        assert body == {"c": "k", "s": 2, "d": "kept", "r": [{"f": 3, "z": 2500}]}
        got = exchange(d, f"{sid}/get/json", {"s": 2, "f": 3, "l": 1024, "n": 3}, sid)
        assert b"".join(base64.b64decode(b["p"]) for _, b in got) == data
        d.close()
        assert backend.call("Status")["streams"] == 1
    finally:
        daemon.stop(tmp_path)
