"""The stand-in's Device Shadow rules, on the engine itself (no broker): what update, get and
delete answer, merge, version, delta, metadata and every refusal with AWS's code and message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.shadow import MAX_DEPTH, MAX_STATE, ShadowEngine

T0 = 1_750_000_000
PREFIX = "$aws/things/t1/shadow"


class Rig:
    def __init__(self, folder: Path) -> None:
        self.now = float(T0)
        self.db = Database(folder / "db.sqlite")
        self.sent: list[tuple[str, Any]] = []
        self.engine = ShadowEngine(self.db, lambda t, p: self.sent.append((t, json.loads(p))),
                                   clock=lambda: self.now)

    def ask(self, op: str, body: Any = None, thing: str = "t1", raw: bytes | None = None,
            name: str = "") -> list[tuple[str, Any]]:
        self.sent.clear()
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        where = f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")
        self.engine.handle(f"{where}/{op}", payload)
        return list(self.sent)

    def one(self, op: str, body: Any = None, **kw: Any) -> tuple[str, Any]:
        """The answer (accepted or rejected) to one request."""
        out = self.ask(op, body, **kw)
        return out[0][0].rsplit("/", 1)[1], out[0][1]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    yield r
    r.db.close()


def test_update_is_accepted_with_its_fields_metadata_version_and_token(rig):
    out = rig.ask("update", {"state": {"reported": {"firmware": "1.0.0", "job": {"id": "j1"}}},
                             "clientToken": "tok-1"})
    assert [t for t, _ in out] == [f"{PREFIX}/update/accepted", f"{PREFIX}/update/documents"]
    body = out[0][1]
    assert body == {"state": {"reported": {"firmware": "1.0.0", "job": {"id": "j1"}}},
                    "metadata": {"reported": {"firmware": {"timestamp": T0},
                                              "job": {"id": {"timestamp": T0}}}},
                    "version": 1, "timestamp": T0, "clientToken": "tok-1"}
    docs = out[1][1]
    assert docs["previous"] is None and docs["current"]["version"] == 1


def test_updates_merge_null_deletes_and_the_version_grows(rig):
    rig.one("update", {"state": {"reported": {"fw": "1", "job": {"id": "a", "reason": "x"}}}})
    rig.now += 10
    kind, body = rig.one("update", {"state": {"reported": {"job": {"id": "b", "reason": None}}}})
    assert kind == "accepted" and body["version"] == 2
    kind, got = rig.one("get", {"clientToken": "g"})
    assert kind == "accepted"
    assert got["state"] == {"reported": {"fw": "1", "job": {"id": "b"}}}
    assert got["metadata"]["reported"]["fw"] == {"timestamp": T0}
    assert got["metadata"]["reported"]["job"] == {"id": {"timestamp": T0 + 10}}
    assert got["version"] == 2 and got["clientToken"] == "g" and got["timestamp"] == T0 + 10
    rig.one("update", {"state": {"reported": None}})
    assert rig.one("get")[1]["state"] == {} and rig.one("get")[1]["version"] == 3


def test_desired_that_differs_makes_a_delta(rig):
    rig.one("update", {"state": {"reported": {"mode": "a", "n": 1}}})
    out = rig.ask("update", {"state": {"desired": {"mode": "b", "n": 1}}, "clientToken": "d"})
    assert [t.rsplit("/", 1)[1] for t, _ in out] == ["accepted", "documents", "delta"]
    delta = out[2][1]
    assert delta["state"] == {"mode": "b"} and delta["version"] == 2 and delta["clientToken"] == "d"
    assert delta["metadata"] == {"mode": {"timestamp": T0}}
    assert rig.one("get")[1]["state"]["delta"] == {"mode": "b"}
    out = rig.ask("update", {"state": {"reported": {"mode": "b"}}})  # a report makes no delta
    assert [t.rsplit("/", 1)[1] for t, _ in out] == ["accepted", "documents"]
    assert "delta" not in rig.one("get")[1]["state"]


def test_a_version_that_is_not_the_current_one_is_a_conflict(rig):
    rig.one("update", {"state": {"reported": {"a": 1}}})
    assert rig.one("update", {"state": {"reported": {"a": 2}}, "version": 1})[0] == "accepted"
    kind, body = rig.one("update", {"state": {"reported": {"a": 3}}, "version": 1, "clientToken": "v"})
    assert kind == "rejected"
    assert body == {"code": 409, "message": "Version conflict", "timestamp": T0, "clientToken": "v"}
    assert rig.one("get")[1]["state"]["reported"] == {"a": 2}


@pytest.mark.parametrize("raw, code, message", [
    (b"{not json", 400, "Invalid JSON"),
    (b"[1, 2]", 400, "Invalid JSON"),
    (b"", 400, "Invalid JSON"),
    (b"\xff\xfe", 415, "Unsupported documented encoding; supported encoding is UTF-8"),
    (json.dumps({"clientToken": "c"}).encode(), 400, "Missing required node: state"),
    (json.dumps({"state": 5}).encode(), 400, "State node must be an object"),
    (json.dumps({"state": {"reported": "x"}}).encode(), 400, "Reported node must be an object"),
    (json.dumps({"state": {"desired": [1]}}).encode(), 400, "Desired node must be an object"),
    (json.dumps({"state": {"other": {}}}).encode(), 400, "State contains an invalid node"),
    (json.dumps({"state": {"reported": {}}, "version": "1"}).encode(), 400, "Invalid version"),
    (json.dumps({"state": {"reported": {}}, "clientToken": "x" * 65}).encode(), 400, "Invalid clientToken"),
])
def test_bad_updates_are_rejected_with_awss_code_and_message(rig, raw, code, message):
    kind, body = rig.one("update", raw=raw)
    assert kind == "rejected" and body["code"] == code and body["message"] == message
    assert rig.one("get")[1]["code"] == 404  # nothing was stored


def test_the_client_token_limit_is_64_bytes(rig):
    assert rig.one("update", {"state": {"reported": {}}, "clientToken": "x" * 64})[0] == "accepted"


def nested(levels: int) -> dict[str, Any]:
    v: Any = 1
    for _ in range(levels):
        v = {"k": v}
    return v


def test_nesting_is_limited_to_six_levels(rig):
    assert rig.one("update", {"state": {"reported": nested(MAX_DEPTH)}})[0] == "accepted"
    kind, body = rig.one("update", {"state": {"reported": nested(MAX_DEPTH + 1)}})
    assert kind == "rejected" and body["code"] == 400
    assert body["message"] == "JSON contains too many levels of nesting; maximum is 6"


@pytest.mark.parametrize("empty", [[], {}])
def test_an_empty_list_or_object_is_one_level_of_nesting(rig, empty):
    """An empty array counts as a level, as an empty object does: at the sixth level it is
    accepted, at the seventh refused."""
    def inside(levels: int) -> dict[str, Any]:
        v: Any = empty
        for _ in range(levels):
            v = {"k": v}
        return v

    assert rig.one("update", {"state": {"reported": inside(MAX_DEPTH - 1)}})[0] == "accepted"
    kind, body = rig.one("update", {"state": {"desired": inside(MAX_DEPTH)}})
    assert kind == "rejected" and body["code"] == 400
    assert body["message"] == "JSON contains too many levels of nesting; maximum is 6"


def state_of(size: int) -> dict[str, Any]:
    """A reported state whose desired + reported JSON is exactly `size` bytes."""
    overhead = len(json.dumps({"reported": {"a": ""}}, separators=(",", ":")))
    return {"a": "x" * (size - overhead)}


def test_the_state_is_limited_to_8_kb_after_the_merge(rig):
    assert rig.one("update", {"state": {"reported": state_of(MAX_STATE)}})[0] == "accepted"
    rig.one("update", {"state": {"reported": None}})
    kind, body = rig.one("update", {"state": {"reported": state_of(MAX_STATE + 1)}})
    assert kind == "rejected" and body["code"] == 413
    assert body["message"] == "The payload exceeds the maximum size allowed"
    # a small update that would make the merged state too large is refused too
    rig.one("update", {"state": {"reported": state_of(MAX_STATE)}})
    assert rig.one("update", {"state": {"desired": {"b": 1}}})[1]["code"] == 413
    assert rig.one("get")[1]["state"] == {"reported": state_of(MAX_STATE)}


def test_get_and_delete_of_no_shadow_are_404_and_the_version_goes_on_after_a_delete(rig):
    kind, body = rig.one("get", {"clientToken": "g"})
    assert kind == "rejected" and body["code"] == 404 and body["clientToken"] == "g"
    assert body["message"] == "No shadow exists with name: 't1'"
    assert rig.one("delete")[1]["code"] == 404
    rig.one("update", {"state": {"reported": {"a": 1}}})
    rig.one("update", {"state": {"reported": {"a": 2}}})
    kind, body = rig.one("delete", {"clientToken": "d"})
    assert kind == "accepted" and body == {"version": 2, "timestamp": T0, "clientToken": "d"}
    assert rig.one("get")[1]["code"] == 404
    assert rig.one("update", {"state": {"reported": {"a": 3}}})[1]["version"] == 3


def test_named_shadows_are_apart_from_the_classic_one(rig):
    out = rig.ask("update", {"state": {"reported": {"a": 1}}}, name="extra")
    assert out[0][0] == f"{PREFIX}/name/extra/update/accepted"
    assert rig.one("get")[1]["code"] == 404
    assert rig.one("get", name="extra")[1]["state"] == {"reported": {"a": 1}}


def test_answers_and_unknown_operations_get_no_answer(rig):
    for op in ("update/accepted", "get/rejected", "update/delta", "list", "update/x"):
        assert rig.ask(op, {"state": {}}) == []


def test_the_shadow_survives_a_restart(rig, tmp_path):
    rig.one("update", {"state": {"reported": {"a": 1}}})
    rig.db.close()
    again = Rig(tmp_path)
    assert again.one("get")[1]["state"] == {"reported": {"a": 1}}
    assert again.engine.get_thing_shadow("t1")["version"] == 1
    assert again.engine.get_thing_shadow("t2") is None
    rig.db = again.db
