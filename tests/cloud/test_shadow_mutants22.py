"""tools/fotatools/cloud/shadow.py, in process: the desired and reported state together may be
8192 bytes of JSON (AWS IoT's 8 KB shadow limit; metadata does not count) and one byte more is
refused with 413, the number written out here (a test that reads MAX_STATE moves with it); a
section set to null goes with its metadata; a publish that fails is logged with its topic and
the other answers still go out."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.shadow import ShadowEngine

from tests.cloud.engines import shadow_engine

T0 = 1_750_000_000
PREFIX = "$aws/things/t1/shadow"


@pytest.fixture
def shadows(tmp_path: Path):
    yield from shadow_engine(tmp_path, float(T0))


def reported_of(size: int) -> dict[str, Any]:
    """A reported section whose state JSON ({"reported":{"a":"x..."}}) is `size` bytes."""
    overhead = len('{"reported":{"a":""}}')
    return {"a": "x" * (size - overhead)}


@pytest.mark.parametrize("size, taken", [(8192, True), (8193, False)])
def test_a_state_of_8192_bytes_is_taken_and_one_byte_more_refused(shadows, size, taken):
    engine, sent = shadows
    reported = reported_of(size)
    assert len(json.dumps({"reported": reported}, separators=(",", ":"))) == size
    engine.handle(f"{PREFIX}/update", json.dumps({"state": {"reported": reported}}).encode())
    topic, body = sent[0]
    if taken:
        assert topic == f"{PREFIX}/update/accepted" and body["version"] == 1
        assert engine.get_thing_shadow("t1")["state"] == {"reported": reported}
    else:
        assert topic == f"{PREFIX}/update/rejected"
        assert body == {"code": 413, "message": "The payload exceeds the maximum size allowed",
                        "timestamp": T0}
        assert engine.get_thing_shadow("t1") is None


@pytest.mark.parametrize("clear", [{"desired": None}, None], ids=["desired-null", "state-null"])
def test_a_section_set_to_null_goes_with_its_metadata(shadows, clear):
    engine, sent = shadows
    engine.handle(f"{PREFIX}/update", json.dumps(
        {"state": {"desired": {"fw": "2.0.0"}, "reported": {"fw": "1.0.0"}}}).encode())
    sent.clear()
    engine.handle(f"{PREFIX}/update", json.dumps({"state": clear}).encode())
    documents = dict(sent)[f"{PREFIX}/update/documents"]
    shadow = engine.get_thing_shadow("t1")
    if clear is None:  # both sections go
        assert documents["current"]["state"] == {} and documents["current"]["metadata"] == {}
        assert shadow["state"] == {} and shadow["metadata"] == {}
    else:
        assert documents["current"]["metadata"] == {"reported": {"fw": {"timestamp": T0}}}
        assert shadow["state"] == {"reported": {"fw": "1.0.0"}}
        assert shadow["metadata"] == {"reported": {"fw": {"timestamp": T0}}}


def test_a_failed_publish_is_logged_with_its_topic_and_the_rest_still_go_out(tmp_path, caplog):
    db = Database(tmp_path / "db.sqlite")
    sent: list[str] = []

    def publish(topic: str, payload: bytes) -> None:
        if topic.endswith("/accepted"):
            raise OSError("connection closed")
        sent.append(topic)

    engine = ShadowEngine(db, publish, clock=lambda: float(T0))
    with caplog.at_level(logging.ERROR, logger="fotatools.cloud.shadow"):
        engine.handle(f"{PREFIX}/update", json.dumps({"state": {"desired": {"fw": "2"}}}).encode())
    db.close()
    assert sent == [f"{PREFIX}/update/documents", f"{PREFIX}/update/delta"]
    assert [r.getMessage() for r in caplog.records] == [f"publish to {PREFIX}/update/accepted failed"]
    assert caplog.records[0].exc_info[0] is OSError
