"""tools/fotatools/cloud/store.py's HTTPS front speaks HTTP/1.1, as S3 does: a client keeps one
connection for several requests (keep-alive), HEAD and ranges included, and an object larger
than the server's read chunk comes whole."""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fotatools.cloud import store as storemod
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.store import CHUNK, ObjectStore

SECRET = b"k" * 32
DATA = bytes(range(256)) * (CHUNK // 256) + b"last"  # one read chunk and 4 bytes

# The server in its own interpreter, as the stand-in's daemon runs it: the module (and its
# handler class with its HTTP version) is loaded afresh there.
SERVE = """
import sys
from pathlib import Path
from fotatools.cloud.store import ObjectStore, StoreServer

home = Path(sys.argv[1])
server = StoreServer(ObjectStore(home / "store", sys.argv[2].encode()), home / "srv" / "server.pem",
                     home / "srv" / "server.key").start()
print(server.port, flush=True)
sys.stdin.read()  # until the test closes stdin
server.stop()
"""


@pytest.fixture()
def served(tmp_path) -> Iterator[tuple[ObjectStore, ssl.SSLContext]]:
    ca = LocalCA(tmp_path / "ca").ensure()
    cert = ca.issue_server(tmp_path / "srv")
    (tmp_path / "srv" / "server.pem").write_bytes(cert.cert_pem.read_bytes())
    (tmp_path / "srv" / "server.key").write_bytes(cert.key_pem.read_bytes())
    store = ObjectStore(tmp_path / "store", SECRET)
    store.put("bucket", "fw.bin", DATA)
    env = dict(os.environ)
    root = str(Path(storemod.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(tmp_path), SECRET.decode()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip().isdigit(), "the store server did not start"
        store.port = int(line)
        yield store, ssl.create_default_context(cafile=str(ca.cert_path))
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        assert proc.wait(timeout=10) == 0


def test_requests_go_over_one_connection(served):
    store, ctx = served
    url = urlsplit(store.presign("bucket", "fw.bin", 60))
    target = f"{url.path}?{url.query}"
    conn = http.client.HTTPSConnection("localhost", store.port, context=ctx, timeout=5)
    try:
        conn.request("HEAD", target)
        r = conn.getresponse()
        assert (r.status, r.version, r.getheader("Content-Length"), r.read()) == (200, 11, str(len(DATA)), b"")
        assert not r.will_close and conn.sock is not None, "the server closed the connection after a HEAD"
        sock = conn.sock
        conn.request("GET", target)
        r = conn.getresponse()
        assert (r.status, r.version) == (200, 11) and r.read() == DATA and conn.sock is sock
        conn.request("GET", target, headers={"Range": f"bytes={CHUNK - 1}-"})
        r = conn.getresponse()
        assert r.status == 206 and r.read() == DATA[CHUNK - 1:] and conn.sock is sock
        conn.request("GET", target.replace("fw.bin", "none.bin"))
        r = conn.getresponse()  # refused (the signature is for another key), the connection kept
        assert r.status == 403 and b"AccessDenied" in r.read() and conn.sock is sock
    finally:
        conn.close()
