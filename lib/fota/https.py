# Streaming HTTPS GET for firmware downloads.
#
# One request, one response, read in place with readinto(): nothing is buffered beyond what
# the caller hands in. The server certificate must chain to the CA given (DER) and match the
# host name. `start` asks for the bytes from that offset on (Range), so a broken download can
# go on from the last good sector: a 206 must start there, and a server that ignores Range
# and answers 200 with the whole file (RFC 9110 section 14.2 lets it) has the bytes before
# `start` dropped as they come. File.open() asks again from any offset and refuses a file
# whose ETag changed between two responses, so that a resumed download never joins two
# versions of a file. Each read waits `timeout` s at most (TIMEOUT by default); the status
# line and the headers come within that time, in HEADER_LINES lines of LINE_MAX bytes at
# most. The handshake tells the board's clock how it went (clock.tls_ok, clock.hint): a refusal over
# certificate dates moves the clock, and the request is made again at once (a few times at
# most) when it did.

import socket
import ssl
import time

from fota import clock

HEADER_LINES = 64  # header lines a response may have
LINE_MAX = 1024  # bytes in one of them
TIMEOUT = 30  # s: each read of a response, and its status line and headers


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
    if not host:
        raise HTTPError("bad host in URL")
    if min(url) <= " " or max(url) > "~":  # the request line ends at CR LF: none in the URL
        raise HTTPError("a space, a control character or non-ASCII in URL")
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
    def __init__(self, sock, status, length, total, skip=0, etag=None):
        self.sock = sock
        self.status = status
        self.length = length - skip  # bytes of this response's body the caller gets
        self.total = total  # size of the whole object (from Content-Range), or length
        self.left = length  # body bytes still to come on the connection
        self.skip = skip  # of which the first ones are dropped (a server that ignored Range)
        self.etag = etag  # the server's ETag, or None
        self.feed = None  # called for each piece dropped (the watchdog's feed)

    def readinto(self, buf):
        # Fill as much of buf as the body still has; 0 at the end of the body.
        mv = memoryview(buf)
        while self.skip > 0:  # into the caller's buffer, then overwritten
            self.skip -= self._read(mv[:min(len(mv), self.skip)])
            if self.feed:
                self.feed()
        if self.left <= 0:
            return 0
        return self._read(mv[:min(len(mv), self.left)])

    def _read(self, mv):
        n = self.sock.readinto(mv)
        if not n:
            raise Broken("connection closed with %d bytes to go" % self.left)
        self.left -= n
        return n

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


class File:
    # One file on a server, opened from any offset as a download goes on: every response must
    # carry the ETag of the first one that had one (a server that gives none is not checked;
    # the image's MD5 or signature still is, once it is whole). feed: the watchdog's, fed
    # while a response that ignored Range is read up to the offset asked for.
    def __init__(self, url, ca_der, feed=None):
        self.url = url
        self.ca = ca_der
        self.feed = feed
        self.etag = None

    def open(self, start):
        r = get(self.url, self.ca, start)
        if r.etag is not None:
            if self.etag is not None and r.etag != self.etag:
                r.close()
                raise HTTPError("the file changed on the server during the download (ETag %s, now %s)"
                                % (_text(self.etag), _text(r.etag)))
            self.etag = r.etag
        r.feed = self.feed
        return r


def _text(b):
    try:
        return b.decode()
    except UnicodeError:
        return repr(b)


def get(url, ca_der, start=0, timeout=None):
    timeout = timeout or TIMEOUT
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


def _response(sock, start, timeout=TIMEOUT):
    deadline = time.ticks_add(time.ticks_ms(), timeout * 1000)
    line = _line(sock, deadline, timeout)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HTTPError("bad status line")
    status = int(parts[1])
    length = total = first = -1
    etag = None
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
            first = int(v.split(b"-", 1)[0].split()[-1])
        elif k == b"etag":
            etag = bytes(v)
        elif k == b"transfer-encoding" and v.lower() != b"identity":
            chunked = True
    skip = 0
    if status == 200 and start:
        skip = start  # Range ignored: the whole file, whose first bytes are dropped
    elif status != (206 if start else 200):
        raise HTTPError("HTTP %d" % status)
    elif start and first != start:
        raise HTTPError("asked for bytes from %d, the server sent them from %d" % (start, first)
                        if first >= 0 else "a 206 answer without Content-Range")
    if chunked or length < 0:
        raise HTTPError("no Content-Length in response")
    if total < 0 or status == 200:  # Content-Range means nothing in a 200 (RFC 9110 14.4)
        total = length
    if skip > length:
        raise HTTPError("asked for bytes from %d of a %d-byte file" % (start, length))
    return Response(sock, status, length, total, skip, etag)
