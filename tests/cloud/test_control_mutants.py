"""tools/fotatools/cloud/control.py's HTTP front speaks HTTP/1.1: a client keeps one connection
for several calls (keep-alive); the server closes it only after a call it refuses unread (a
wrong token, a body too large), and says so."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fotatools.cloud import control
from fotatools.cloud.control import MAX_BODY


# The server in its own interpreter, as the stand-in's daemon runs it: the module (and its
# handler class with its HTTP version) is loaded afresh there.
SERVE = """
import sys
from pathlib import Path
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore

home = Path(sys.argv[1])
db = Database(home / "cloud.db")
store = ObjectStore(home / "store", b"k" * 32)
server = ControlServer(ControlApi(JobsEngine(db, presign=store.presign, minute=60.0), store, None,
                                  "localhost", 8883), "tok").start()
print(server.port, flush=True)
sys.stdin.read()  # until the test closes stdin
server.stop()
db.close()
"""


@pytest.fixture()
def port(tmp_path) -> Iterator[int]:
    env = dict(os.environ)
    root = str(Path(control.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip().isdigit(), "the control server did not start"
        yield int(line)
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=10) == 0


def call(conn: http.client.HTTPConnection, token: str = "tok", length: int | None = None) -> http.client.HTTPResponse:
    headers = {"Authorization": f"Bearer {token}"}
    if length is not None:  # a Content-Length the server refuses before reading the body
        headers["Content-Length"] = str(length)
    conn.request("POST", "/ListThings", body=b"{}", headers=headers)
    r = conn.getresponse()
    json.loads(r.read())
    return r


def test_two_calls_go_over_one_connection(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
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
def test_the_connection_is_closed_after_a_refusal_and_the_client_told_so(port, refusal, status):
    """The server does not read the body of a call it refuses this way, so it closes the
    connection, and says so (Connection: close): the client's next call opens a new one
    instead of failing on the closed socket."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        r = call(conn, **refusal)
        assert r.status == status and r.getheader("Connection") == "close" and r.will_close and conn.sock is None
        assert call(conn).status == 200  # a new connection
    finally:
        conn.close()
