"""MQTT streams in JSON, the fallback of lib/streams.py, against the local stand-in: blocks as
base64 in JSON when told so, and a reader whose first CBOR request is refused or not answered
asks again in JSON; once CBOR has worked, a refusal is an error (no second format tried)."""

from __future__ import annotations

import hashlib

from tests.device.rig import ONCE, firmware
from tests.device.test_signed import publish_doc, sig, signed_rig
from tests.device.test_streams import DATA, device, thing  # noqa: F401 (the fixture)

READ_ALL = """
r = sf.open(0)
h = hashlib.sha256(); buf = bytearray(1000); n = 0
while True:
    k = r.readinto(buf)
    if not k:
        break
    h.update(buf[:k]); n += k
print(json.dumps([sf.fmt, n, binascii.hexlify(h.digest()).decode(), SENT]))
"""

# What the device publishes, counted by topic; `SPOIL` says what happens to CBOR block
# requests on their way out: left out (a service that does not answer them) or sent as
# something that is not CBOR (the service refuses it).
TAP = """
SENT = {}
publish = conn.publish
def tapped(topic, msg):
    kind = topic.rsplit("/", 2)[-2] + "/" + topic.rsplit("/", 1)[-1]
    SENT[kind] = SENT.get(kind, 0) + 1
    if kind == "get/cbor" and SPOIL == "drop":
        return
    publish(topic, b"\\xff" if kind == "get/cbor" and SPOIL == "garble" else msg)
conn.publish = tapped
"""


def test_json_blocks_when_asked_for(thing):
    fmt, n, digest, sent = device(thing, TAP.replace("SPOIL", "None") + """
sf = StreamFile(conn, "STREAM", 0, fmt="json")
""" + READ_ALL)
    assert fmt == "json" and (n, digest) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert "get/cbor" not in sent and sent["get/json"] >= 1


def test_module_switch_asks_json(thing):
    fmt, n, digest, sent = device(thing, TAP.replace("SPOIL", "None") + """
from fota import streams
streams.FORMAT = "json"
sf = StreamFile(conn, "STREAM", 0)
""" + READ_ALL)
    assert fmt == "json" and digest == hashlib.sha256(DATA).hexdigest()
    assert "get/cbor" not in sent


def test_cbor_by_default(thing):
    fmt, n, digest, sent = device(thing, TAP.replace("SPOIL", "None") + """
sf = StreamFile(conn, "STREAM", 0)
""" + READ_ALL)
    assert fmt == "cbor" and digest == hashlib.sha256(DATA).hexdigest()
    assert "get/json" not in sent


def test_unanswered_cbor_falls_back_to_json(thing):
    fmt, n, digest, sent = device(thing, TAP.replace("SPOIL", '"drop"') + """
sf = StreamFile(conn, "STREAM", 0, timeout_ms=1500)
""" + READ_ALL)
    assert fmt == "json" and (n, digest) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert sent["get/cbor"] == 1  # asked once in CBOR, then JSON for good


def test_refused_cbor_falls_back_to_json(thing):
    # the stand-in refuses what is not CBOR on get/cbor (InvalidCbor), as AWS IoT does
    fmt, n, digest, sent = device(thing, TAP.replace("SPOIL", '"garble"') + """
sf = StreamFile(conn, "STREAM", 0, timeout_ms=3000)
""" + READ_ALL)
    assert fmt == "json" and (n, digest) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert sent["get/cbor"] == 1


def test_no_fallback_once_cbor_worked(thing):
    # A block came in CBOR: a refusal is an error, and a request left unanswered is asked
    # again in CBOR, not in JSON.
    out = device(thing, TAP.replace('SPOIL == "drop"', "DROP").replace("SPOIL", "None") + """
DROP = False
sf = StreamFile(conn, "STREAM", 0, timeout_ms=1500)
r = sf.open(0)
r.readinto(bytearray(10))  # a CBOR block came
sf.request(50, 1)  # past the end of the file
refused = err(lambda: sf.block(50))
DROP = True
sf.request(1, 1)
print(json.dumps([refused, sf.block(1) is None, sf.fmt, SENT]))
""")
    refused, lost, fmt, sent = out
    assert refused.startswith("error: InvalidRequest"), out
    assert lost and fmt == "cbor" and "get/json" not in sent, out


def test_json_refusal_is_an_error(thing):
    out = device(thing, """
sf = StreamFile(conn, "STREAM", 0, timeout_ms=3000, fmt="json")
sf.describe()
sf.request(50, 1)
print(json.dumps(err(lambda: sf.block(50))))
""")
    assert out.startswith("error: InvalidRequest"), out


def test_afr_ota_update_over_a_json_stream(rig):
    # The whole flow on a board whose application asks for JSON blocks.
    import uuid

    r = signed_rig(rig)
    (r.fs / "main.py").write_text("from fota import streams\nstreams.FORMAT = 'json'\n" + ONCE)
    new = firmware("1.0.1", size=60_000)
    path = r.folder / "stream.bin"
    path.write_bytes(new)
    key = f"fw/{r.thing}-stream.bin"
    r.cloud.upload(path, key)
    stream = f"AFR_OTA-{uuid.uuid4().hex[:8]}"
    r.cloud.create_stream(stream, [(0, key)], "firmware 1.0.1")
    doc = {"afr_ota": {"protocols": ["MQTT"], "streamname": stream, "files": [{
        "filepath": "/fw.bin", "filesize": len(new), "fileid": 0, "certfile": "signer.crt",
        "sig-sha256-ecdsa": sig(new), "fileType": 0}]}}
    job = publish_doc(r, doc)
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


def test_json_blocks_are_decoded_from_the_message(rig):
    # Per JSON block, what is allocated is the message umqtt.simple reads (the block in
    # base64, a third larger), the decoded block, and the small rest of the map: under three
    # blocks' worth (json.loads of the whole message and a2b_base64 of its text took over six).
    import os
    import uuid

    from tests.device.mpy import run_json
    from tests.device.test_heap import STREAM

    r = rig()
    data = os.urandom(100 * 4096 + 123)
    path = r.folder / "stream.bin"
    path.write_bytes(data)
    key = f"fw/{r.thing}-stream.bin"
    r.cloud.upload(path, key)
    stream = f"S-{uuid.uuid4().hex[:8]}"
    r.cloud.create_stream(stream, [(0, key)], "heap test")
    env = {"MICROPYPATH": os.pathsep.join([str(r.fs / "lib"), ".frozen"])}
    code = STREAM.replace("StreamFile(conn, STREAM_ID, 0)", 'StreamFile(conn, STREAM_ID, 0, fmt="json")')
    assert 'fmt="json"' in code
    got, per_block = run_json(f"STREAM_ID = {stream!r}\n" + code, cwd=r.fs, env=env)
    assert got == len(data)
    assert per_block < 3 * 4096, per_block


def test_a_reader_may_start_inside_a_block(thing):
    out = device(thing, """
sf = StreamFile(conn, "STREAM", 0)
r = sf.open(5000)
h = hashlib.sha256(); buf = bytearray(1000); n = 0
while True:
    k = r.readinto(buf)
    if not k:
        break
    h.update(buf[:k]); n += k
print(json.dumps([n, binascii.hexlify(h.digest()).decode()]))
""")
    assert out == [len(DATA) - 5000, hashlib.sha256(DATA[5000:]).hexdigest()]
