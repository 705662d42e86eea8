"""The stand-in's Device Shadow metadata (tools/fotatools/cloud/shadow.py), on the engine: AWS
keeps a timestamp for each leaf of the state, whatever the leaf is called."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.shadow import ShadowEngine

T0 = 1_750_000_000


@pytest.fixture
def shadow(tmp_path: Path):
    db = Database(tmp_path / "db.sqlite")
    clock = [float(T0)]
    sent: list[tuple[str, Any]] = []
    engine = ShadowEngine(db, lambda t, p: sent.append((t, json.loads(p))), clock=lambda: clock[0])

    def update(reported: dict[str, Any], at: int) -> dict[str, Any]:
        clock[0] = float(at)
        sent.clear()
        engine.handle("$aws/things/t1/shadow/update", json.dumps({"state": {"reported": reported}}).encode())
        assert sent[0][0].endswith("/update/accepted"), sent
        doc = engine.get_thing_shadow("t1")
        assert doc is not None
        return doc

    yield update
    db.close()


def test_an_object_merged_into_keeps_each_leafs_timestamp(shadow):
    doc = shadow({"a": {"y": 2}, "b": {"timestamp": 5}}, T0)
    assert doc["metadata"]["reported"] == {"a": {"y": {"timestamp": T0}}, "b": {"timestamp": {"timestamp": T0}}}
    doc = shadow({"a": {"x": 1}, "b": {"x": 1}}, T0 + 10)
    assert doc["state"]["reported"] == {"a": {"y": 2, "x": 1}, "b": {"timestamp": 5, "x": 1}}
    assert doc["metadata"]["reported"] == {
        "a": {"y": {"timestamp": T0}, "x": {"timestamp": T0 + 10}},
        "b": {"timestamp": {"timestamp": T0}, "x": {"timestamp": T0 + 10}}}


def test_a_value_replaced_by_an_object_gets_the_objects_timestamps(shadow):
    shadow({"a": 1}, T0)
    doc = shadow({"a": {"x": 1}}, T0 + 10)
    assert doc["metadata"]["reported"] == {"a": {"x": {"timestamp": T0 + 10}}}
