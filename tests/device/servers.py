"""Real servers the device talks to in tests: an HTTPS file server with faults on demand."""

from __future__ import annotations

import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def tls_server(handler: type[BaseHTTPRequestHandler], cert: Path,
               key: Path) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """An HTTPS server on 127.0.0.1 at a free port, with `cert` (chained to the test CA), and
    the thread that serves it (not started)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    return httpd, threading.Thread(target=httpd.serve_forever, daemon=True)


class FirmwareServer:
    """HTTPS on 127.0.0.1:<free port>. Paths:
    /fw/<name>            the file, with Range support
    /status/<code>/<name> answer <code>
    /short/<name>         Content-Length says the whole file, the body stops 1000 bytes early
    /long/<name>          the file plus 4096 extra bytes (and a Content-Length saying so)
    /drop/<n>/<name>      the first request breaks the connection after n bytes; later ones work
    /dropall/<n>/<name>   every request breaks the connection after n bytes
    /hold/<name>          the file, once the test calls release() (held is set while it waits)
    /chunked/<name>       Transfer-Encoding: chunked
    /chunkedlen/<name>    Transfer-Encoding: chunked and a Content-Length as well (which must not be used)
    /headers/<n>/<name>   n header lines before the file's (a server that never ends its headers)
    /longheader/<name>    a header line of 100 KB
    /slowheaders/<name>   a header line every 0.5 s, 40 of them, then the file
    """

    def __init__(self, files: dict[str, bytes], cert: Path, key: Path) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.dropped: set[str] = set()
        self.held = threading.Event()  # a /hold/ request is waiting
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                m = re.match(r"^/(fw|short|long|chunkedlen|chunked|hold|status/(\d+)|drop/(\d+)|dropall/(\d+)"
                             r"|headers/\d+|longheader|slowheaders)/([^?]+)", self.path)
                if not m or m.group(5) not in server.files:
                    return self._send(404, b"not found")
                data = server.files[m.group(5)]
                kind = m.group(1)
                if m.group(2):
                    return self._send(int(m.group(2)), b"<Error>denied</Error>")
                if kind == "hold":
                    server.held.set()
                    if not server._release.wait(120):
                        return self._send(503, b"never released")
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                body = data[start:]
                if kind == "long":
                    body += b"\xAA" * 4096
                status = 206 if start else 200
                self.send_response(status)
                if kind in ("chunked", "chunkedlen"):
                    self.send_header("Transfer-Encoding", "chunked")
                    if kind == "chunkedlen":
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
                    return
                try:
                    self.flush_headers()  # the status line goes first
                    if kind.startswith("headers/"):
                        for i in range(int(kind[8:])):
                            self.wfile.write(b"X-Pad-%d: %s\r\n" % (i, b"p" * 40))
                    elif kind == "longheader":
                        self.wfile.write(b"X-Long: " + b"l" * 100_000 + b"\r\n")
                    elif kind == "slowheaders":
                        for i in range(40):
                            self.wfile.write(b"X-Slow-%d: s\r\n" % i)
                            self.wfile.flush()
                            time.sleep(0.5)
                except OSError:
                    return  # the device hung up
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Connection", "close")
                self.end_headers()
                if kind == "short":
                    body = body[:-1000]
                if m.group(3) and self.path not in server.dropped:
                    server.dropped.add(self.path)
                    body = body[:int(m.group(3))]
                if m.group(4):
                    body = body[:int(m.group(4))]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd, self.thread = tls_server(Handler, cert, key)
        self.port = self.httpd.server_address[1]

    def release(self) -> None:
        """Let /hold/ requests (waiting or to come) have their answer."""
        self._release.set()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.port}{path}"

    def __enter__(self) -> "FirmwareServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
