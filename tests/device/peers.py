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
import json
import re
import select
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.device.servers import tls_server

# What HttpPeer can do to one request (N: a byte count):
HTTP_FAULTS = {
    "ignore-range": "200 and the whole file to a request with Range",
    "truncate N": "Content-Length of the whole answer, N bytes of the body, then the connection closes",
    "stall-headers": "the status line and the headers, then nothing",
    "stall-body N": "N bytes of the body, then nothing",
    "other-range N": "206 with the bytes from N on, whatever the request asked",
    "swap": "the file is another one from this request on (same size, another ETag)",
    "slow N": "the body in pieces of 4 KB, N ms apart",
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
                    step = len(body) if "slow" not in do else 4096
                    for i in range(0, len(body), step or 1):
                        if i:
                            time.sleep(int(do["slow"]) / 1000)
                        self.wfile.write(body[i:i + step])
                        self.wfile.flush()
                    self.wfile.flush()
                    with server._lock:
                        server.requests[n] = (asked, status, len(body))
                    if "stall-headers" in do or "stall-body" in do:
                        server._closing.wait(300)  # nothing more, until the client gives up
                except OSError:
                    pass  # the client hung up

        self.httpd, self.thread = tls_server(Handler, cert, key)
        self.httpd.daemon_threads = True
        self.url = f"https://localhost:{self.httpd.server_address[1]}/fw.bin"

    def __enter__(self) -> "HttpPeer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a broker that drops or repeats messages ------------------------------------------------

class BrokerPeer:
    """A TLS proxy between one thing and the stand-in's broker that drops or repeats chosen
    MQTT PUBLISH packets on their way to the device. It shows the device the stand-in's own
    server certificate and connects on to the broker with the thing's certificate, so that
    it sees the MQTT packets. `rules`: (action, topic regex, n): the n-th PUBLISH (counted over
    every connection, from 1; 0: every one) whose topic matches is dropped ("drop") or sent
    twice ("twice"). `seen` lists (topic, action) of every PUBLISH to the device.

        with BrokerPeer(home, thing, [("drop", r"/jobs/notify", 0)]) as b:
            config["port"] = b.port
    """

    def __init__(self, home: Path, thing: str, rules: list[tuple[str, str, int]]) -> None:
        from fotatools.cloud.ca import LocalCA
        from fotatools.cloud.daemon import Paths
        from fotatools.provisioning import host_dir

        paths = Paths(home)
        srv = LocalCA(paths.ca).existing(paths.server, "server")
        keep = host_dir(home, thing)
        info = json.loads((keep / "thing.json").read_text())
        self.upstream = (info["endpoint"], int(info["port"]))
        self.rules = [(a, re.compile(t), n) for a, t, n in rules]
        self.counts = [0] * len(self.rules)
        self.seen: list[tuple[str, str]] = []
        self.errors: list[str] = []  # connections that ended on an error (for a test's message)
        self._lock = threading.Lock()
        self._serve = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._serve.load_cert_chain(srv.cert_pem, srv.key_pem)
        self._client = ssl.create_default_context(cafile=str(keep / "ca.pem"))
        self._client.load_cert_chain(keep / "device.crt.pem", keep / "device.key.pem")
        self._listen = socket.create_server(("127.0.0.1", 0))
        self.port = self._listen.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "BrokerPeer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True  # each connection's thread closes its sockets
        self._listen.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                raw, _ = self._listen.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(raw,), daemon=True).start()

    def _session(self, raw: socket.socket) -> None:
        # One thread per connection, both directions: an SSL object is never used by two
        # threads at once.
        try:
            raw.settimeout(30)
            dev = self._serve.wrap_socket(raw, server_side=True)
            up = self._client.wrap_socket(socket.create_connection(self.upstream, timeout=30),
                                          server_hostname=self.upstream[0])
        except OSError as e:
            self.errors.append("connect: %r" % e)
            raw.close()
            return
        buf = b""
        for s in (dev, up):
            s.setblocking(False)  # a readable socket may hold TLS records with no data
        try:
            while not self._stop:
                ready = [s for s in (dev, up) if s.pending()]
                if not ready:
                    ready = select.select([dev, up], [], [], 0.2)[0]
                for s in ready:
                    try:
                        data = s.recv(65536)
                    except ssl.SSLWantReadError:
                        continue
                    if not data:
                        return
                    if s is dev:
                        _send(up, data)
                        continue
                    buf += data
                    while True:
                        packet, buf = _split(buf)
                        if packet is None:
                            break
                        for _ in range(self._copies(packet)):
                            _send(dev, packet)
        except OSError as e:
            self.errors.append("session: %r" % e)
        finally:
            for s in (dev, up):
                try:
                    s.close()
                except OSError:
                    pass

    def _copies(self, packet: bytes) -> int:
        """How many times this packet goes on to the device (0: dropped)."""
        if packet[0] >> 4 != 3:  # not a PUBLISH
            return 1
        i = 1
        while packet[i] & 0x80:
            i += 1
        (n,) = struct.unpack_from(">H", packet, i + 1)
        topic = packet[i + 3:i + 3 + n].decode(errors="replace")
        action = "pass"
        with self._lock:
            for k, (a, pattern, nth) in enumerate(self.rules):
                if pattern.search(topic):
                    self.counts[k] += 1
                    if nth in (0, self.counts[k]):
                        action = a
                        break
            self.seen.append((topic, action))
        return {"drop": 0, "twice": 2}.get(action, 1)


def _send(s: ssl.SSLSocket, data: bytes) -> None:
    s.setblocking(True)
    try:
        s.sendall(data)
    finally:
        s.setblocking(False)


def _split(buf: bytes) -> tuple[bytes | None, bytes]:
    """One whole MQTT packet off the front of buf -> (packet or None, the rest)."""
    if len(buf) < 2:
        return None, buf
    n, shift, i = 0, 0, 1
    while True:
        if i >= len(buf):
            return None, buf
        b = buf[i]
        n |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            break
        shift += 7
    if len(buf) < i + n:
        return None, buf
    return buf[:i + n], buf[i + n:]
