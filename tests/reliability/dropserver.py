"""An HTTPS server for one file that breaks the connection at given byte offsets, once each,
and records where every request started (its Range) and how many body bytes it sent."""

from __future__ import annotations

import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.device.servers import tls_server


class DropServer:
    def __init__(self, data: bytes, cert: Path, key: Path, drops: list[int]) -> None:
        self.data = data
        self.drops = sorted(drops)  # absolute offsets in the file, each breaks one response
        self.requests: list[tuple[int, int]] = []  # (start, body bytes sent)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                start = 0
                m = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m:
                    start = int(m.group(1))
                body = server.data[start:]
                stop = next((d for d in server.drops if d > start), None)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(server.data) - 1}/{len(server.data)}")
                self.send_header("Connection", "close")
                self.end_headers()
                if stop is not None:
                    server.drops.remove(stop)
                    body = body[:stop - start]
                self.wfile.write(body)
                self.wfile.flush()
                server.requests.append((start, len(body)))
                self.close_connection = True

        self.httpd, self.thread = tls_server(Handler, cert, key)
        self.url = f"https://localhost:{self.httpd.server_address[1]}/fw.bin"

    def __enter__(self) -> "DropServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
