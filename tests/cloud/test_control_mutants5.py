"""tools/fotatools/cloud/control.py: PutObject takes an object of MAX_OBJECT bytes and refuses
one byte more (413, the connection closed, the object not stored). MAX_OBJECT is lowered here
so that the test sends little."""

from __future__ import annotations

import http.client
import json

import pytest

from fotatools.cloud import control
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore

LIMIT = 4096


@pytest.fixture()
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "MAX_OBJECT", LIMIT)
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    api = ControlApi(JobsEngine(db, presign=store.presign, minute=60.0), store, None,  # type: ignore[arg-type]
                     "localhost", 8883)
    srv = ControlServer(api, "tok").start()
    yield srv, store
    srv.stop()
    db.close()


def put(port: int, key: str, body: bytes) -> tuple[int, dict, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", f"/PutObject?bucket=bucket&key={key}", body=body,
                     headers={"Authorization": "Bearer tok"})
        r = conn.getresponse()
        return r.status, json.loads(r.read()), r.getheader("Connection")
    finally:
        conn.close()


def test_an_object_of_max_object_bytes_is_stored_and_one_byte_more_refused(server):
    srv, store = server
    status, _, _ = put(srv.port, "at.bin", b"a" * LIMIT)
    assert status == 200
    assert store.path("bucket", "at.bin").read_bytes() == b"a" * LIMIT
    status, body, connection = put(srv.port, "over.bin", b"b" * (LIMIT + 1))
    assert (status, body, connection) == (413, {"__type": "InvalidRequestException",
                                                "message": "object too large"}, "close")
    assert not store.path("bucket", "over.bin").exists()
