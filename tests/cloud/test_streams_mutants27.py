"""tools/fotatools/cloud/streams.py, in process: a request that fails inside the service (not
a refusal of the request) is answered InternalError, as AWS IoT answers, and is logged with the
topic it came on and the traceback of the failure, so that whoever runs the stand-in can see
what went wrong; a refused request is no failure and logs no error."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fotatools.cloud.db import Database
from fotatools.cloud.store import ObjectStore
from fotatools.cloud.streams import StreamsEngine

TOPIC = "$aws/things/t1/streams/s1/get/json"


def engine(tmp_path: Path) -> tuple[StreamsEngine, Database, list[tuple[str, Any]]]:
    db = Database(tmp_path / "cloud.db")
    sent: list[tuple[str, Any]] = []
    e = StreamsEngine(db, ObjectStore(tmp_path / "store", b"k" * 32),
                      publish=lambda topic, payload: sent.append((topic, json.loads(payload))))
    return e, db, sent


def test_a_failure_inside_is_logged_with_its_topic_and_traceback(tmp_path: Path, caplog):
    e, db, sent = engine(tmp_path)
    db.close()  # the service's database gone: a failure that is no refusal of the request
    with caplog.at_level(logging.ERROR, logger="fotatools.cloud.streams"):
        e.handle(TOPIC, b'{"c": "i", "f": 0, "l": 256}')
    assert sent[0][1]["o"] == "InternalError"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"stream request on {TOPIC} failed"]
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is not None


def test_a_refused_request_logs_no_error(tmp_path: Path, caplog):
    e, db, sent = engine(tmp_path)
    try:
        with caplog.at_level(logging.ERROR, logger="fotatools.cloud.streams"):
            e.handle(TOPIC, b'{"c": "i", "f": 0, "l": 256}')
    finally:
        db.close()
    assert sent[0][1]["o"] == "ResourceNotFound"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
