"""The stand-in's Device Shadow delta (tools/fotatools/cloud/shadow.py): AWS IoT's
update/delta message carries, in `metadata`, the timestamps of the fields in its `state` only,
object by object: a desired field of a nested object that the device already reports is in
neither."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fotatools.cloud.db import Database
from fotatools.cloud.shadow import ShadowEngine

T0 = 1_750_000_000


def test_the_delta_metadata_has_only_the_fields_of_the_delta(tmp_path: Path):
    db = Database(tmp_path / "db.sqlite")
    sent: list[tuple[str, Any]] = []
    engine = ShadowEngine(db, lambda t, p: sent.append((t, json.loads(p))), clock=lambda: float(T0))
    try:
        engine.handle("$aws/things/t1/shadow/update",
                      json.dumps({"state": {"reported": {"app": {"x": 1, "y": 1}}}}).encode())
        sent.clear()
        engine.handle("$aws/things/t1/shadow/update",
                      json.dumps({"state": {"desired": {"app": {"x": 1, "y": 2}}}}).encode())
        deltas = [p for t, p in sent if t == "$aws/things/t1/shadow/update/delta"]
        assert len(deltas) == 1, sent
        assert deltas[0]["state"] == {"app": {"y": 2}}
        assert deltas[0]["metadata"] == {"app": {"y": {"timestamp": T0}}}
    finally:
        db.close()
