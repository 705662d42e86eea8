# Streaming HTTPS GET for firmware downloads.
#
# One request, one response, read in place with readinto(): nothing is buffered beyond what
# the caller hands in. The server certificate must chain to the CA given (DER) and match the
# host name. `start` asks for the bytes from that offset on (Range), so a broken download can
# go on from the last good sector. Each read waits `timeout` s at most; the status line and
# the headers come within `timeout` s, in HEADER_LINES lines of LINE_MAX bytes at most. The
# handshake tells the board's clock how it went (clock.tls_ok, clock.hint): a refusal over
# certificate dates moves the clock, and the request is made again at once (a few times at
# most) when it did.

import socket
import ssl
import time

from fota import clock

HEADER_LINES = 64  # header lines a response may have
LINE_MAX = 1024  # bytes in one of them


class HTTPError(Exception):
    pass


class Broken(HTTPError):
    # The connection ended early: worth trying again from where it broke.
    pass


def split_url(url):
    # -> (host, port, path). Only https: firmware never travels in the clear.
    if not isinstance(url, str) or not url.startswith("https://"):
        raise HTTPError("not an https URL")
    rest = url[8:]
    i = rest.find("/")
    hostport, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    host, port = hostport, 443
    if ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        try:
            port = int(p)
        except ValueError:
            port = 0
        if not 0 < port < 65536:  # lwIP's getaddrinfo refuses it (an OSError, retried for nothing)
            raise HTTPError("bad port in URL")
    if not host or " " in url:
        raise HTTPError("bad host in URL")
    return host, port, path


def nodelay(sock):
    # Send each write at once (no Nagle): a request leaves in several small TLS records, and
    # Nagle would hold every one after the first until the peer's delayed ACK (40-200 ms).
    try:
        sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
    except (OSError, AttributeError):
        pass  # a port without the option: slower, not wrong


def tls_context(ca_der, cert_der=None, key_der=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=ca_der)
    if cert_der:
        ctx.load_cert_chain(cert_der, key_der)
    return ctx


class Response:
    def __init__(self, sock, status, length, total):
        self.sock = sock
        self.status = status
        self.length = length  # bytes in this response's body
        self.total = total  # size of the whole object (from Content-Range), or length
        self.left = length

    def readinto(self, buf):
        # Fill as much of buf as the body still has; 0 at the end of the body.
        if self.left <= 0:
            return 0
        mv = memoryview(buf)
        want = min(len(mv), self.left)
        n = self.sock.readinto(mv[:want])
        if not n:
            raise Broken("connection closed with %d bytes to go" % self.left)
        self.left -= n
        return n

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def get(url, ca_der, start=0, timeout=30):
    tries = 3
    while True:
        try:
            r = _get(url, ca_der, start, timeout)
        except Exception as e:
            tries -= 1
            if not clock.hint(e) or not tries:
                raise
            continue
        clock.tls_ok()
        return r


def _get(url, ca_der, start, timeout):
    host, port, path = split_url(url)
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
    sock = socket.socket()
    try:
        sock.settimeout(timeout)
        sock.connect(addr)
        nodelay(sock)
        sock = tls_context(ca_der).wrap_socket(sock, server_hostname=host)
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (path, host)
        if start:
            req += "Range: bytes=%d-\r\n" % start
        sock.write(req.encode() + b"\r\n")
        return _response(sock, start, timeout)
    except Exception:
        sock.close()
        raise


def _line(sock, deadline, timeout):
    line = sock.readline(LINE_MAX)
    if len(line) == LINE_MAX and line[-1] != 10:
        raise HTTPError("a header line longer than %d bytes" % LINE_MAX)
    if time.ticks_diff(deadline, time.ticks_ms()) < 0:
        raise HTTPError("no end of the headers in %d s" % timeout)
    return line


def _response(sock, start, timeout=30):
    deadline = time.ticks_add(time.ticks_ms(), timeout * 1000)
    line = _line(sock, deadline, timeout)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HTTPError("bad status line")
    status = int(parts[1])
    length = total = -1
    chunked = False
    n = 0
    while True:
        line = _line(sock, deadline, timeout)
        if not line:
            raise Broken("connection closed in headers")
        if line == b"\r\n":
            break
        n += 1
        if n > HEADER_LINES:
            raise HTTPError("more than %d header lines" % HEADER_LINES)
        k, _, v = line.partition(b":")
        k = k.strip().lower()
        v = v.strip()
        if k == b"content-length":
            length = int(v)
        elif k == b"content-range":  # bytes a-b/total
            total = int(v.rsplit(b"/", 1)[1])
        elif k == b"transfer-encoding" and v.lower() != b"identity":
            chunked = True
    if status != (206 if start else 200):
        raise HTTPError("HTTP %d" % status)
    if chunked or length < 0:
        raise HTTPError("no Content-Length in response")
    if total < 0:
        total = length
    return Response(sock, status, length, total)
