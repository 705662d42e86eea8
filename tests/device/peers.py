"""Peers that misbehave, for tests and the fault sweeps: an HTTPS file server that ignores
Range, truncates, stalls, sends another range or changes the file between requests; a TLS
proxy in front of the broker that drops or repeats chosen MQTT messages. (The secondary MCU's
faults are the emulator's: `Secondary.faults(late=..., twice=..., stale=..., reset_late=...)`;
the flash's: `ESP32_SHORT_AT`; the time servers': tests/device/ntp.py.)

Each fault is named by a short string, so that a sweep can list them:

    with HttpPeer(data, cert, key, ["truncate 5000", "ignore-range"]) as s:   # request by request
        doc["bc_url"] = s.url
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

# What HttpPeer can do to one request (N: a byte count):
HTTP_FAULTS = {
    "ignore-range": "200 and the whole file to a request with Range",
    "truncate N": "Content-Length of the whole answer, N bytes of the body, then the connection closes",
    "stall-headers": "the status line and the headers, then nothing",
    "stall-body N": "N bytes of the body, then nothing",
    "other-range N": "206 with the bytes from N on, whatever the request asked",
    "swap": "the file is another one from this request on (same size, another ETag)",
}
# Faults combine with "+": "swap+ignore-range" (another file, whole, to a resumed request).


def changed(data: bytes) -> bytes:
    """Another file of the same size: what a server holds after someone replaced the file."""
    b = bytearray(data)
    for i in range(0, len(b), 997):
        b[i] ^= 0x5A
    return bytes(b)


class HttpPeer:
    """HTTPS on 127.0.0.1:<free port> serving one file at `url`, with Range support and a
    strong ETag (the content's MD5, as S3 gives) unless etag=False. `faults`: one entry per
    request in order (None: behave), see HTTP_FAULTS; requests after the list behave.
    `requests` records each one: (start asked, status, body bytes sent)."""

    def __init__(self, data: bytes, cert: Path, key: Path, faults: list[str | None] | None = None,
                 etag: bool = True) -> None:
        self.data = data
        self.faults = list(faults or [])
        self.etag = etag
        self.requests: list[tuple[int, int, int]] = []
        self._closing = threading.Event()  # stalled answers end when the server stops
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    n = len(server.requests)
                    fault = (server.faults[n] if n < len(server.faults) else None) or ""
                    if "swap" in fault.split("+"):
                        server.data = changed(server.data)
                    data = server.data
                    server.requests.append((0, 0, 0))
                m = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                asked = int(m.group(1)) if m else 0
                do = dict(part.partition(" ")[::2] for part in fault.split("+") if part)
                start = asked
                if "ignore-range" in do:
                    start = 0
                if "other-range" in do:
                    start = int(do["other-range"])
                status = 206 if start or "other-range" in do else 200
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if server.etag:
                    self.send_header("ETag", '"%s"' % hashlib.md5(data).hexdigest())
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for kind in ("truncate", "stall-body"):
                    if kind in do:
                        body = body[:int(do[kind])]
                if "stall-headers" in do:
                    body = b""
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                    with server._lock:
                        server.requests[n] = (asked, status, len(body))
                    if "stall-headers" in do or "stall-body" in do:
                        server._closing.wait(300)  # nothing more, until the client gives up
                except OSError:
                    pass  # the client hung up

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://localhost:{self.httpd.server_address[1]}/fw.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HttpPeer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
