"""tools/fotatools/cloud/control.py's HTTP front speaks HTTP/1.1: a client keeps one connection
for several calls (keep-alive); the server closes it only after a call it refuses unread (a
wrong token, a body too large), and says so."""

from __future__ import annotations

import http.client
import json

import pytest

from fotatools.cloud.control import MAX_BODY, ControlApi, ControlServer
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore


@pytest.fixture()
def server(tmp_path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    engine = JobsEngine(db, presign=store.presign, minute=60.0)
    srv = ControlServer(ControlApi(engine, store, None, "localhost", 8883), "tok").start()  # type: ignore[arg-type]
    yield srv
    srv.stop()
    db.close()


def call(conn: http.client.HTTPConnection, token: str = "tok", length: int | None = None) -> http.client.HTTPResponse:
    headers = {"Authorization": f"Bearer {token}"}
    if length is not None:  # a Content-Length the server refuses before reading the body
        headers["Content-Length"] = str(length)
    conn.request("POST", "/ListThings", body=b"{}", headers=headers)
    r = conn.getresponse()
    json.loads(r.read())
    return r


def test_two_calls_go_over_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        r = call(conn)
        assert r.status == 200 and r.version == 11 and not r.will_close
        sock = conn.sock
        assert sock is not None, "the server closed the connection after one call"
        r = call(conn)
        assert r.status == 200 and r.version == 11 and conn.sock is sock
    finally:
        conn.close()


@pytest.mark.parametrize("refusal, status", [({"token": "wrong"}, 401), ({"length": MAX_BODY + 1}, 413)])
def test_the_connection_is_closed_after_a_refusal_and_the_client_told_so(server, refusal, status):
    """The server does not read the body of a call it refuses this way, so it closes the
    connection, and says so (Connection: close): the client's next call opens a new one
    instead of failing on the closed socket."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        r = call(conn, **refusal)
        assert r.status == status and r.getheader("Connection") == "close" and r.will_close and conn.sock is None
        assert call(conn).status == 200  # a new connection
    finally:
        conn.close()
