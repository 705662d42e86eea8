"""lib/https.py against a real HTTPS server, in MicroPython."""

import hashlib

import pytest

from tests.device.mpy import run_json
from tests.device.test_clock import FAKE_RTC
from tests.device.servers import FirmwareServer

DOWNLOAD = """
import json, hashlib, binascii
from fota.https import get, HTTPError
ca = open({ca!r}, "rb").read()
try:
    r = get({url!r}, ca, start={start}, timeout={timeout})
    h = hashlib.md5(); buf = bytearray(4096); n = 0
    while True:
        k = r.readinto(buf)
        if not k:
            break
        h.update(memoryview(buf)[:k]); n += k
    r.close()
    print(json.dumps({{"n": n, "total": r.total, "md5": binascii.hexlify(h.digest()).decode()}}))
except Exception as e:
    print(json.dumps({{"error": "%s: %s" % (type(e).__name__, e)}}))
"""


def download(pki, url, start=0, timeout=30):
    return run_json(DOWNLOAD.format(ca=str(pki["ca_der"]), url=url, start=start, timeout=timeout))


def test_streams_the_whole_file(pki, https_server, blob):
    r = download(pki, https_server.url("/fw/blob.bin"))
    assert r == {"n": len(blob), "total": len(blob), "md5": hashlib.md5(blob).hexdigest()}


def test_range_from_an_offset(pki, https_server, blob):
    r = download(pki, https_server.url("/fw/blob.bin"), start=8192)
    assert r == {"n": len(blob) - 8192, "total": len(blob), "md5": hashlib.md5(blob[8192:]).hexdigest()}
    assert https_server.requests[-1][1] == "bytes=8192-"


@pytest.mark.parametrize("path,error", [
    ("/status/403/blob.bin", "HTTPError: HTTP 403"),
    ("/status/404/blob.bin", "HTTPError: HTTP 404"),
    ("/status/500/blob.bin", "HTTPError: HTTP 500"),
    ("/short/blob.bin", "Broken: connection closed with 1000 bytes to go"),
    ("/chunked/blob.bin", "HTTPError: no Content-Length"),
    ("/chunkedlen/blob.bin", "HTTPError: no Content-Length"),
])
def test_server_faults_are_errors(pki, https_server, path, error):
    assert download(pki, https_server.url(path))["error"].startswith(error)


@pytest.mark.parametrize("path,error", [
    ("/headers/60/blob.bin", None),  # and the server's own 4 (Server, Date, Content-Length, Connection)
    ("/headers/61/blob.bin", "HTTPError: more than 64 header lines"),
    ("/headers/100000/blob.bin", "HTTPError: more than 64 header lines"),
    ("/longheader/blob.bin", "HTTPError: a header line longer than 1024 bytes"),
    ("/slowheaders/blob.bin", "HTTPError: no end of the headers in 3 s"),
])
def test_headers_without_end_are_refused(pki, https_server, blob, path, error):
    # A server that never ends its headers, or one slowly: bounded in lines, bytes and time.
    r = download(pki, https_server.url(path), timeout=3)
    if error is None:
        assert r == {"n": len(blob), "total": len(blob), "md5": hashlib.md5(blob).hexdigest()}
    else:
        assert r.get("error") == error, r


def test_plain_http_is_refused(pki, https_server):
    assert download(pki, f"http://localhost:{https_server.port}/fw/blob.bin")["error"] == \
        "HTTPError: not an https URL"


def test_server_not_chaining_to_the_ca_is_refused(pki, blob):
    with FirmwareServer({"blob.bin": blob}, pki["rogue_cert"], pki["rogue_key"]) as s:
        r = download(pki, s.url("/fw/blob.bin"))
    assert r["error"].startswith(("OSError", "ValueError")), r  # mbedTLS: ValueError + reason
    assert s.requests == []  # nothing was asked of a server the device does not trust


def test_certificate_for_another_name_is_refused(pki, blob):
    # A server certificate of the right CA, for other.example: the URL says localhost.
    with FirmwareServer({"blob.bin": blob}, pki["other_cert"], pki["other_key"]) as s:
        r = download(pki, s.url("/fw/blob.bin"))
        assert "The certificate Common Name (CN) does not match" in r.get("error", ""), r  # mbedTLS
        assert s.requests == []
        # the same server is trusted under the name its certificate carries
        ok = download(pki, s.url("/fw/blob.bin").replace("localhost", "127.0.0.1"))
    assert ok == {"n": len(blob), "total": len(blob), "md5": hashlib.md5(blob).hexdigest()}


def test_device_sockets_send_each_write_at_once():
    # Nagle's algorithm would hold each small TLS record of an MQTT packet or HTTP request
    # until the peer's delayed ACK: both transports turn it off on the raw socket (IPPROTO_TCP
    # 6, TCP_NODELAY 1, as on lwIP) before the TLS handshake.
    out = run_json("""
import json
from fota import awsiot, https
calls = []
class Sock:
    def setsockopt(self, *a):
        calls.append(list(a))
    def settimeout(self, t):
        calls.append(["timeout", t])
class Ctx:
    def wrap_socket(self, sock, server_hostname=None):
        calls.append(["wrap", server_hostname])
        return "tls"
print(json.dumps([awsiot._TLS(Ctx(), "broker.example", 30).wrap_socket(Sock()).tls, calls]))
""")
    # the handshake (and CONNACK, SUBACK) waits awsiot.READ_S at most
    assert out == ["tls", [[6, 1, 1], ["timeout", 30], ["wrap", "broker.example"]]]


# the board's clock around a download: test_clock's fake RTC records what the clock is set to
CLOCKED = FAKE_RTC.replace("{", "{{").replace("}", "}}") + """
import json
from fota import https
clock._floor = int(time.time()) - 1000
clock.synced = {synced}
clock._on = {on!r}
clock._due = 12345
try:
    r = https.get({url!r}, open({ca!r}, "rb").read())
    r.close()
    print(json.dumps({{"synced": clock.synced, "on": clock._on, "set": len(_RTC.set)}}))
except Exception as e:
    print(json.dumps({{"error": str(e), "synced": clock.synced, "due": clock._due, "set": len(_RTC.set)}}))
"""


def test_a_certificate_date_refusal_sets_the_clock_again(pki, blob, tmp_path):
    # a believed clock that a server's certificate calls expired: the clock goes back to the
    # floor and the request is made again at once, three times at most; the sources are to be
    # asked again at the next chance (due None)
    import datetime as dt

    from fotatools.cloud.ca import LocalCA
    now = dt.datetime.now(dt.timezone.utc)
    files = LocalCA.save(pki["ca"].issue("localhost", server=True,
                                         valid=(now - dt.timedelta(days=50), now - dt.timedelta(days=3))),
                         tmp_path, "expired")
    with FirmwareServer({"blob.bin": blob}, files.cert_pem, files.key_pem) as s:
        r = run_json(CLOCKED.format(synced=2, on=None, url=s.url("/fw/blob.bin"), ca=str(pki["ca_der"])))
    assert "The certificate validity has expired" in r["error"], r
    assert (r["synced"], r["due"], r["set"]) == (0, None, 3), r


def test_a_download_confirms_a_time_on_trial(pki, https_server):
    r = run_json(CLOCKED.format(synced=0, on="ntp.example", url=https_server.url("/fw/blob.bin"),
                                ca=str(pki["ca_der"])))
    assert r == {"synced": 1, "on": None, "set": 0}
