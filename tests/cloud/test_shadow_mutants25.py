"""tools/fotatools/cloud/shadow.py, in process: a request that fails inside the engine (here the
database) is answered with AWS's 500 "Internal service failure", and the failure is logged with
the request's topic and its traceback, so that whoever runs the stand-in can see what broke."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest


from tests.cloud.engines import shadow_engine

T0 = 1_750_000_000
PREFIX = "$aws/things/t1/shadow"


@pytest.fixture
def shadows(tmp_path: Path):
    yield from shadow_engine(tmp_path, float(T0))


def test_an_internal_failure_is_answered_500_and_logged_with_its_topic(shadows, monkeypatch, caplog):
    engine, sent = shadows

    def broken(thing: str, name: str) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(engine.db, "get_shadow", broken)
    caplog.set_level(logging.ERROR, logger="fotatools")
    engine.handle(f"{PREFIX}/get", b"")
    assert sent == [(f"{PREFIX}/get/rejected",
                     {"code": 500, "message": "Internal service failure", "timestamp": T0})]
    logged = [r for r in caplog.records if r.getMessage() == f"internal error on {PREFIX}/get"]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is sqlite3.OperationalError
