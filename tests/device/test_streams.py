"""lib/streams.py in MicroPython against the local stand-in's MQTT file delivery: answers are
taken only when they are for this reader, this file and the block asked for."""

from __future__ import annotations

import os
import random
import uuid

import pytest

from tests.device.mpy import run_json

DATA = random.Random(7).randbytes(5 * 4096 + 100)

PRELUDE = """
import json, hashlib, binascii
from fota.awsiot import Connection, load_config
from fota.streams import StreamFile, StreamError
conn = Connection(load_config())
conn.connect()
def err(f):
    try:
        return f()
    except (StreamError, OSError) as e:
        return "error: %s" % e
"""


@pytest.fixture()
def thing(rig):
    r = rig()
    path = r.folder / "data.bin"
    path.write_bytes(DATA)
    key = f"fw/{r.thing}-stream.bin"
    r.cloud.upload(path, key)
    r.stream = f"S-{uuid.uuid4().hex[:8]}"
    r.cloud.create_stream(r.stream, [(0, key)], "test data")
    return r


def device(r, code: str) -> object:
    env = {"MICROPYPATH": os.pathsep.join([str(r.fs / "lib"), ".frozen"])}
    return run_json(PRELUDE + code.replace("STREAM", r.stream), cwd=r.fs, env=env)


def test_the_whole_file_in_order(thing):
    out = device(thing, """
sf = StreamFile(conn, "STREAM", 0)
r = sf.open(0)
h = hashlib.sha256(); buf = bytearray(1000); n = 0
while True:
    k = r.readinto(buf)
    if not k:
        break
    h.update(buf[:k]); n += k
print(json.dumps([r.total, n, binascii.hexlify(h.digest()).decode()]))
""")
    import hashlib

    assert out == [len(DATA), len(DATA), hashlib.sha256(DATA).hexdigest()]


def test_blocks_before_the_one_wanted_are_skipped(thing):
    out = device(thing, """
sf = StreamFile(conn, "STREAM", 0)
sf.describe()
sf.request(0, 3)
print(json.dumps(binascii.hexlify(sf.block(2)).decode()))
""")
    assert bytes.fromhex(out) == DATA[2 * 4096:3 * 4096]


@pytest.mark.parametrize("forged", ["another reader's token", "another file"])
def test_answers_for_someone_else_are_ignored(thing, forged):
    # A block message (CBOR, as the service sends them) that reaches the reader before the
    # real one (the broker lets no thing publish on its reply topics, so it is handed to the
    # reader as the connection would): it must not be taken for block 0.
    token = "'other'" if forged == "another reader's token" else "sf.token"
    file_id = 0 if forged == "another reader's token" else 7
    out = device(thing, f"""
from fota import streams
sf = StreamFile(conn, "STREAM", 0)
sf.describe()
head = bytearray(64)
n = streams._encode(head, (("c", {token}), ("f", {file_id}), ("l", 4096), ("i", 0)))
head[0] += 1  # a fifth entry: the payload
sf.request(0, 1)
sf._on_msg(sf.prefix + "data/cbor", bytes(head[:n]) + b"\\x61p\\x59\\x10\\x00" + b"x" * 4096)
print(json.dumps(binascii.hexlify(sf.block(0)).decode()))
""")
    assert bytes.fromhex(out) == DATA[:4096]


def test_a_block_of_the_wrong_length_is_an_error(thing):
    out = device(thing, """
from fota import streams
sf = StreamFile(conn, "STREAM", 0)
sf.describe()
head = bytearray(64)
n = streams._encode(head, (("c", sf.token), ("f", 0), ("l", 100), ("i", 0)))
head[0] += 1
sf.request(0, 1)
sf._on_msg(sf.prefix + "data/cbor", bytes(head[:n]) + b"\\x61p\\x58\\x64" + b"x" * 100)
print(json.dumps(err(lambda: sf.block(0))))
""")
    assert out == "error: block 0 is not 4096 bytes"


def test_a_refused_request_is_an_error(thing):
    out = device(thing, """
sf = StreamFile(conn, "STREAM", 0, timeout_ms=3000)
sf.describe()
sf.request(50, 1)  # past the end of the file
print(json.dumps(err(lambda: sf.block(50))))
""")
    assert out.startswith("error: InvalidRequest"), out


def test_a_file_that_is_not_in_the_stream(thing):
    assert device(thing, """
print(json.dumps(err(lambda: StreamFile(conn, "STREAM", 5).describe())))
""") == "error: file 5 is not in the stream"


def test_a_stream_that_does_not_exist(thing):
    out = device(thing, """
print(json.dumps(err(lambda: StreamFile(conn, "no-such-stream", 0).describe())))
""")
    assert out.startswith("error: ResourceNotFound"), out
