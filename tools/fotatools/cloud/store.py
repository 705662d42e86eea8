"""HTTPS object store of the AWS IoT stand-in: S3's GET and HEAD for presigned URLs.

Objects live on disk under `root/<bucket>/<key>`. Devices reach them only through presigned
URLs (`https://<host>:<port>/<bucket>/<key>?X-Fota-Expires=<epoch>&X-Fota-Signature=<hex>`,
host `localhost` or the first `--host` name)
that the jobs service puts into job documents; the signature is an HMAC-SHA256, keyed with a
secret kept in the state folder, over the bucket, the key and the expiry. As S3 does, an
unsigned, tampered or expired request gets 403 and a missing key gets 404 only when the
signature is valid. Single byte ranges are served (206, Content-Range; 416 when unsatisfiable).
Uploads go through the control API, never through this server.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import ssl
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO, Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .serve import BackgroundServer

log = logging.getLogger("fotatools.cloud.store")


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path` (readable by its owner only), made with make() on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
    return path.read_text().strip()

EXPIRES_PARAM = "X-Fota-Expires"
SIGNATURE_PARAM = "X-Fota-Signature"
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
CHUNK = 64 * 1024


class StoreError(ValueError):
    """A bad bucket name, key or URL."""


def check_bucket(bucket: str) -> str:
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        raise StoreError(f"invalid bucket name: {bucket!r} (3-63 of a-z 0-9 . -)")
    return bucket


def check_key(key: str) -> str:
    if not key or len(key.encode()) > 1024:
        raise StoreError("object key must be 1-1024 bytes")
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in key:
        raise StoreError(f"invalid object key: {key!r}")
    return key


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of an S3 https URL: path-style `https://host/bucket/key` or
    virtual-hosted `https://bucket.s3.<region>.amazonaws.com/key`."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise StoreError(f"not an https URL: {url!r}")
    host = parts.hostname
    path = unquote(parts.path)
    m = re.match(r"^(?P<bucket>.+?)\.s3(?:[.-](?:[a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?$", host)
    if m and not host.startswith("s3."):
        bucket, key = m.group("bucket"), path.lstrip("/")
    else:
        bucket, _, key = path.lstrip("/").partition("/")
    return check_bucket(bucket), check_key(key)


class ObjectStore:
    """Buckets and keys on disk, and the signing of presigned URLs."""

    def __init__(self, root: Path, secret: bytes, host: str = "localhost"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.secret = secret
        self.host = host  # in presigned URLs: the name devices reach this machine by
        self.port = 0

    @staticmethod
    def load_secret(path: Path) -> bytes:
        """The signing secret kept in `path`, created on first use."""
        return bytes.fromhex(secret_file(path, lambda: secrets.token_hex(32)))

    def path(self, bucket: str, key: str) -> Path:
        return self.root / check_bucket(bucket) / check_key(key)

    def put(self, bucket: str, key: str, src: BinaryIO | bytes) -> str:
        """Store an object; return its ETag (MD5 hex, as S3 gives for a single-part upload)."""
        dest = self.path(bucket, key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        md5 = hashlib.md5()
        with open(tmp, "wb") as f:
            if isinstance(src, (bytes, bytearray)):
                f.write(src)
                md5.update(src)
            else:
                while chunk := src.read(CHUNK):
                    f.write(chunk)
                    md5.update(chunk)
        os.replace(tmp, dest)
        return md5.hexdigest()

    def exists(self, bucket: str, key: str) -> bool:
        return self.path(bucket, key).is_file()

    def _signature(self, bucket: str, key: str, expires: int) -> str:
        msg = f"{bucket}\n{key}\n{expires}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def presign(self, bucket: str, key: str, expires_in: int, now: float | None = None) -> str:
        """A URL that lets anyone GET the object for at least `expires_in` seconds (the expiry
        is a whole second, rounded up: rounded down, a 1 s URL could be dead within 1 ms)."""
        check_bucket(bucket)
        check_key(key)
        expires = math.ceil((time.time() if now is None else now) + expires_in)
        path = quote(f"/{bucket}/{key}", safe="/-_.~")
        sig = self._signature(bucket, key, expires)
        return (f"https://{self.host}:{self.port}{path}"
                f"?{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={sig}")

    def verify(self, bucket: str, key: str, query: dict[str, list[str]], now: float) -> str | None:
        """None when the request is authorised, else the reason it is not."""
        exp = query.get(EXPIRES_PARAM, [""])[0]
        sig = query.get(SIGNATURE_PARAM, [""])[0]
        if not exp or not sig:
            return "Query-string authentication requires the expiry and signature parameters"
        if not exp.isdigit():
            return "Invalid expiry"
        if not hmac.compare_digest(sig, self._signature(bucket, key, int(exp))):
            return "The request signature we calculated does not match the signature you provided"
        if int(exp) < now:
            return "Request has expired"
        return None


def _parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(first, last) for a single satisfiable range; None to ignore the header; "416" when
    unsatisfiable."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # malformed or multi-range: S3 then serves the whole object
    first_s, last_s = m.groups()
    if first_s == "":
        n = int(last_s)
        if n == 0:
            return "416"
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None
    if first >= size:
        return "416"
    return first, min(last, size - 1)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FotaLocalS3/1.0"
    protocol_version = "HTTP/1.1"
    timeout = 60
    store: ObjectStore

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def _error(self, status: int, code: str, message: str) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        try:
            check_bucket(bucket)
            check_key(key)
        except StoreError as e:
            return self._error(400, "InvalidRequest", str(e))
        reason = self.store.verify(bucket, key, parse_qs(parts.query), time.time())
        if reason:
            return self._error(403, "AccessDenied", reason)
        path = self.store.path(bucket, key)
        if not path.is_file():
            return self._error(404, "NoSuchKey", "The specified key does not exist.")
        size = path.stat().st_size
        first, last, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            parsed = _parse_range(rng, size)
            if parsed == "416":
                body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRange</Code>'
                        b"<Message>The requested range is not satisfiable</Message></Error>")
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            if isinstance(parsed, tuple):
                first, last = parsed
                status = 206
        length = last - first + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("Last-Modified", formatdate(path.stat().st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        with open(path, "rb") as f:
            f.seek(first)
            left = length
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve()

    def _not_allowed(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        else:
            self.close_connection = True
        self._error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    do_PUT = do_POST = do_DELETE = do_PATCH = _not_allowed  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # failed handshakes and dropped connections are the client's business
        log.debug("connection from %s failed", client_address, exc_info=True)


class StoreServer(BackgroundServer):
    """The HTTPS front of an ObjectStore on 127.0.0.1 (or `bind`, e.g. 0.0.0.0 for devices on
    the network; a free port unless one is given)."""

    name = "store"

    def __init__(self, store: ObjectStore, cert_pem: Path, key_pem: Path, port: int = 0,
                 bind: str = "127.0.0.1"):
        handler = type("Handler", (_Handler,), {"store": store})
        self.httpd = _Server((bind, port), handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert_pem), str(key_pem))
        # The handshake runs in the request thread, so a silent client cannot stall accept().
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        store.port = self.port
        self.store = store

