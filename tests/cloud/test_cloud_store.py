"""The object store: presigned URLs, ranges, expiry, tampering."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.cloud.conftest import unique

from fotatools.cloud.store import ObjectStore, StoreError, parse_s3_url

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture(scope="module")
def obj(backend, tmp_path_factory):
    src = tmp_path_factory.mktemp("obj") / "fw.bin"
    src.write_bytes(DATA)
    key = f"{unique('store')}/fw.bin"
    url = backend.upload(src, key)
    return key, url


def get(cloud, url: str, method: str = "GET", headers: dict[str, str] | None = None):
    ctx = ssl.create_default_context(cafile=cloud.ca_pem)  # verifies the name "localhost" too
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=10)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


def test_upload_returns_an_s3_style_url(obj):
    key, url = obj
    assert url == f"https://s3.local.amazonaws.com/fota-firmware/{key}"
    assert parse_s3_url(url) == ("fota-firmware", key)


def test_presigned_get_and_head(backend, cloud, obj):
    url = backend.presign(obj[0])
    status, headers, body = get(cloud, url)
    assert status == 200 and body == DATA and headers["Content-Length"] == str(len(DATA))
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, body = get(cloud, url, "HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len(DATA))


@pytest.mark.parametrize("rng,status,first,last", [
    ("bytes=0-99", 206, 0, 99),
    ("bytes=100-", 206, 100, len(DATA) - 1),
    ("bytes=-10", 206, len(DATA) - 10, len(DATA) - 1),
    ("bytes=10000-20000", 206, 10000, len(DATA) - 1),
    ("bytes=5-5", 206, 5, 5),
    ("bytes=0-1,5-6", 200, 0, len(DATA) - 1),  # multiple ranges: the whole object, as S3 does
    ("bytes=9-3", 200, 0, len(DATA) - 1),  # invalid: ignored
    ("items=0-3", 200, 0, len(DATA) - 1),
    ("bytes=-", 200, 0, len(DATA) - 1),  # neither end: ignored
    ("bytes=-1", 206, len(DATA) - 1, len(DATA) - 1),  # the shortest suffix (-0 is unsatisfiable)
    ("bytes=10239-", 206, len(DATA) - 1, len(DATA) - 1),  # the last byte (10240- is unsatisfiable)
    ("bytes=0-10239", 206, 0, len(DATA) - 1),
])
def test_ranges(backend, cloud, obj, rng, status, first, last):
    st, headers, body = get(cloud, backend.presign(obj[0]), headers={"Range": rng})
    assert st == status and body == DATA[first:last + 1]
    if status == 206:
        assert headers["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
    else:
        assert "Content-Range" not in headers


@pytest.mark.parametrize("rng", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_unsatisfiable_range(backend, cloud, obj, rng):
    st, headers, body = get(cloud, backend.presign(obj[0]), headers={"Range": rng})
    assert st == 416 and headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert b"InvalidRange" in body


def _tamper(url: str, what: str) -> str:
    parts = urlsplit(url)
    q = dict(p.split("=", 1) for p in parts.query.split("&"))
    if what == "signature":
        q["X-Fota-Signature"] = ("0" if q["X-Fota-Signature"][0] != "0" else "1") + q["X-Fota-Signature"][1:]
    elif what == "expiry":
        q["X-Fota-Expires"] = str(int(q["X-Fota-Expires"]) + 3600)
    elif what == "key":
        return url.replace("/fw.bin?", "/fw2.bin?")
    elif what == "no-signature":
        del q["X-Fota-Signature"]
    elif what == "no-query":
        return f"{parts.scheme}://{parts.netloc}{parts.path}"
    return f"{parts.scheme}://{parts.netloc}{parts.path}?" + "&".join(f"{k}={v}" for k, v in q.items())


@pytest.mark.parametrize("what", ["signature", "expiry", "key", "no-signature", "no-query"])
def test_tampered_urls_are_refused(backend, cloud, obj, what):
    st, _, body = get(cloud, _tamper(backend.presign(obj[0]), what))
    assert st == 403 and b"AccessDenied" in body


def test_expired_url_is_refused(backend, cloud, obj):
    # Waits for the clock to pass the URL's expiry, not a fixed time (a loaded machine could
    # take longer than a short URL lasts between presigning it and the first GET).
    url = backend.presign(obj[0], expires_sec=1)
    expires = int(dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["X-Fota-Expires"])
    assert expires >= time.time() + 0.5  # at least the second asked for, less the call
    while time.time() <= expires + 0.05:
        time.sleep(0.05)
    st, _, body = get(cloud, url)
    assert st == 403 and b"expired" in body
    assert get(cloud, backend.presign(obj[0], expires_sec=60))[0] == 200


def test_missing_key(backend, cloud):
    url = backend.presign(f"{unique('none')}/missing.bin")
    st, _, body = get(cloud, url)
    assert st == 404 and b"NoSuchKey" in body
    st, _, _ = get(cloud, _tamper(url, "signature"))
    assert st == 403  # without a valid signature nothing is revealed


def test_writes_are_not_allowed(backend, cloud, obj):
    st, _, _ = get(cloud, backend.presign(obj[0]), "PUT")
    assert st == 405
    st, _, body = get(cloud, backend.presign(obj[0]))
    assert st == 200 and body == DATA


def test_presigned_url_needs_the_local_ca(backend, obj):
    url = urlsplit(backend.presign(obj[0]))
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ssl.create_default_context(), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", url.path)
    conn.close()


def test_store_signing_without_server(tmp_path: Path):
    store = ObjectStore(tmp_path / "s", ObjectStore.load_secret(tmp_path / "secret"))
    assert ObjectStore.load_secret(tmp_path / "secret") == store.secret  # kept, not regenerated
    store.port = 1234
    etag = store.put("bucket-1", "a/b.bin", b"hello")
    assert etag == "5d41402abc4b2a76b9719d911017c592"
    url = store.presign("bucket-1", "a/b.bin", 60, now=1000.0)
    q = {k: [v] for k, v in (p.split("=") for p in urlsplit(url).query.split("&"))}
    assert store.verify("bucket-1", "a/b.bin", q, now=1060.0) is None  # its last second
    assert "expired" in (store.verify("bucket-1", "a/b.bin", q, now=1060.001) or "")
    late = store.presign("bucket-1", "a/b.bin", 1, now=1000.9)  # rounded up, not down
    assert "X-Fota-Expires=1002&" in late
    assert "signature" in (store.verify("bucket-1", "a/c.bin", q, now=1000.0) or "")
    other = ObjectStore(tmp_path / "s", b"\x00" * 32)
    assert "signature" in (other.verify("bucket-1", "a/b.bin", q, now=1000.0) or "")


@pytest.mark.parametrize("url,expected", [
    ("https://s3.amazonaws.com/my-bucket/fw/a.bin", ("my-bucket", "fw/a.bin")),
    ("https://s3.eu-west-1.amazonaws.com/my-bucket/a.bin", ("my-bucket", "a.bin")),
    ("https://s3.local.amazonaws.com/fota-firmware/t/x.bin", ("fota-firmware", "t/x.bin")),
    ("https://my-bucket.s3.us-east-1.amazonaws.com/fw/a.bin", ("my-bucket", "fw/a.bin")),
    ("https://my.dotted.bucket.s3.amazonaws.com/a.bin", ("my.dotted.bucket", "a.bin")),
    ("https://localhost:4443/bkt/k%20x.bin", ("bkt", "k x.bin")),
])
def test_parse_s3_url(url, expected):
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize("url", [
    "ftp://s3.amazonaws.com/b/k", "https://s3.amazonaws.com/bucket-only", "https://s3.amazonaws.com/",
    "https://s3.amazonaws.com/Bad_Bucket/k", "https://s3.amazonaws.com/bkt/../etc/passwd", "not a url",
])
def test_parse_s3_url_rejects(url):
    with pytest.raises(StoreError):
        parse_s3_url(url)


@pytest.mark.parametrize("key,status", [
    ("a/../fw.bin", 400), ("a//fw.bin", 400), ("./fw.bin", 400), ("k" * 1025, 400),
    ("k" * 1024, 403),  # the longest key S3 takes: checked, then refused for want of a signature
])
def test_a_bad_object_key_is_an_invalid_request(backend, cloud, key, status):
    url = urlsplit(backend.presign("fw.bin"))
    st, headers, body = get(cloud, f"https://{url.netloc}/fota-firmware/{key}")
    assert st == status
    assert (b"<Code>InvalidRequest</Code>" if status == 400 else b"<Code>AccessDenied</Code>") in body
    assert headers["Content-Type"] == "application/xml"  # what an S3 client parses the code from
    assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("bucket", ["Bad_Bucket", "ab", "a" * 64])
def test_a_bad_bucket_is_an_invalid_request(backend, cloud, bucket):
    url = urlsplit(backend.presign("fw.bin"))
    st, _, body = get(cloud, f"https://{url.netloc}/{bucket}/fw.bin")
    assert st == 400 and b"<Code>InvalidRequest</Code>" in body


def test_a_large_object_is_stored_and_served_whole(backend, cloud, tmp_path):
    # larger than the 64 KiB the store copies and sends at a time, and not a multiple of it
    data = bytes(range(256)) * 700 + b"end"
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    key = f"{unique('big')}/big.bin"
    backend.upload(src, key)
    st, headers, body = get(cloud, backend.presign(key))
    assert st == 200 and body == data
    st, _, body = get(cloud, backend.presign(key), headers={"Range": "bytes=65530-"})
    assert st == 206 and body == data[65530:]


def test_a_head_answer_ends_with_its_headers(backend, cloud, obj):
    # nothing may follow the headers of a HEAD answer (RFC 9110 9.3.2): raw, as a client sees it
    url = urlsplit(backend.presign(obj[0]))
    ctx = ssl.create_default_context(cafile=cloud.ca_pem)
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=url.hostname) as tls:
        tls.sendall(f"HEAD {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                    "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0]
    assert f"Content-Length: {len(DATA)}".encode() in answer
    assert answer.endswith(b"\r\n\r\n") and answer.count(b"\r\n\r\n") == 1
