"""tools/fotatools/cloud/store.py: the store's HTTPS front answers a POST, PUT or DELETE that
carries no Content-Length with 405 MethodNotAllowed (as S3 refuses a method it does not allow
on an object) and closes the connection; it does not fail without an answer."""

from __future__ import annotations

import socket
import ssl

import pytest

from fotatools.cloud.ca import LocalCA
from fotatools.cloud.store import ObjectStore, StoreServer


@pytest.fixture()
def served(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    cert = ca.issue_server(tmp_path / "srv")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    store.put("bucket", "fw.bin", b"firmware")
    server = StoreServer(store, cert.cert_pem, cert.key_pem).start()
    yield server.port, ssl.create_default_context(cafile=str(ca.cert_path)), store
    server.stop()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_a_request_without_content_length_gets_405(served, method):
    port, ctx, store = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"{method} /bucket/fw.bin HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            answer = b""
            while chunk := s.recv(4096):  # the server closes the connection after its answer
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert b"<Code>MethodNotAllowed</Code>" in answer
    assert store.path("bucket", "fw.bin").read_bytes() == b"firmware"
