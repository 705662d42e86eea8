"""An HTTPS server that misbehaves (tests/device/peers.py: HttpPeer), and the board's answer to
each: a resumed download that goes on right, or FAILED with the reason, the running firmware
untouched and the target slot never a bootable mix of two images."""

from __future__ import annotations

import hashlib

import pytest

from emulator.flash import Flash
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from tests.device.mpy import run_json
from tests.device.peers import HttpPeer
from tests.device.rig import ONCE, firmware
from tests.device.test_https import DOWNLOAD
from tests.device.test_slot_failures import unbootable, with_previous_image

NEW = firmware("1.0.1", size=200_000)
SECTOR = 4096
# the board's reads wait 3 s, not 30: a stalled server costs the test seconds
APP = "from fota import https\nhttps.TIMEOUT = 3\n" + ONCE


def server_cert(cloud):
    paths = Paths(cloud[1])
    return LocalCA(paths.ca).existing(paths.server, "server")


def update(rig, cloud, faults, etag=True, data=NEW):
    """Run one update from a peer with these faults -> (rig, job, requests, run result)."""
    srv = server_cert(cloud)
    r = rig(app=APP)
    with_previous_image(r)
    with HttpPeer(data, srv.cert_pem, srv.key_pem, faults, etag=etag) as s:
        job = r.publish(NEW, bc_url=s.url)
        result = r.run(max_boots=3)
        requests = list(s.requests)
    assert result.exit_reason == "main-returned", result.console
    return r, job, requests, result


CUT = 50_000  # where the first answer stops
AT = CUT - CUT % SECTOR  # where the board asks again: its last whole sector

GOES_ON = {
    "truncated once": (["truncate %d" % CUT], [(0, 200, CUT), (AT, 206, len(NEW) - AT)]),
    "truncated, then Range ignored": (["truncate %d" % CUT, "ignore-range"],
                                      [(0, 200, CUT), (AT, 200, len(NEW))]),
    "headers, then nothing": (["stall-headers"], [(0, 200, 0), (0, 200, len(NEW))]),
    "some bytes, then nothing": (["stall-body %d" % CUT], [(0, 200, CUT), (AT, 206, len(NEW) - AT)]),
}


@pytest.mark.parametrize("fault", list(GOES_ON))
def test_a_download_goes_on_after_the_server_misbehaves(rig, cloud, fault):
    faults, expected = GOES_ON[fault]
    r, job, requests, result = update(rig, cloud, faults)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"
    assert requests == expected, requests


def test_a_server_that_ignores_range_every_time_after_two_breaks(rig, cloud):
    # Broken at 50 KB, then the whole file from byte 0 broken at 120 KB, then the whole file:
    # each time the board drops what it has and takes the rest; the third connection is its last.
    r, job, requests, result = update(rig, cloud, ["truncate %d" % CUT, "ignore-range+truncate 120000",
                                                   "ignore-range"])
    assert r.execution(job).status == "SUCCEEDED", result.console
    at2 = 120_000 - 120_000 % SECTOR
    assert requests == [(0, 200, CUT), (AT, 200, 120_000), (at2, 200, len(NEW))], requests


def test_the_watchdog_is_fed_while_the_bytes_before_the_offset_are_dropped(rig, cloud):
    # A board with a 2 s watchdog (4 s with the emulator's grace); the second answer brings
    # the whole file, 4 KB every 200 ms: 7 s of it before the offset the board asked for.
    srv = server_cert(cloud)
    app = APP.replace("fota.handle_fota_jobs(jobs, force=True)",
                      "import machine\nfota.watchdog = machine.WDT(timeout=2000)\n"
                      "fota.handle_fota_jobs(jobs, force=True)")
    r = rig(app=app)
    with HttpPeer(NEW, srv.cert_pem, srv.key_pem, ["truncate 150000", "ignore-range+slow 200"]) as s:
        job = r.publish(NEW, bc_url=s.url)
        result = r.run(max_boots=3)
    assert result.boot_count == 2 and "task_wdt" not in result.console, result.console  # the update's reset only
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


def failed(r, job, reason, result):
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    assert ex.status_details["step"] == "download", ex.status_details
    assert reason in ex.status_details["reason"], ex.status_details
    assert result.boot_count == 1, result.console
    assert Flash(r.flash).boot_slot() == "ota_0"
    assert r.version() == "1.0.0"


def test_a_server_that_stalls_every_time_ends_the_job(rig, cloud):
    r, job, requests, result = update(rig, cloud, ["stall-body %d" % CUT] * 3)
    failed(r, job, "ETIMEDOUT", result)
    at2 = (AT + CUT) - (AT + CUT) % SECTOR  # each stall came after 50 KB more
    assert [q[0] for q in requests] == [0, AT, at2], requests
    unbootable(r)  # the first sectors of the new image were written: the header goes


def test_a_file_changed_between_requests_is_refused_at_once(rig, cloud):
    # The ETag of the resumed answer is not the first one's: the rest of the new file would
    # make a mix of two images. Refused before a byte of it is written, not retried.
    r, job, requests, result = update(rig, cloud, ["truncate %d" % CUT, "swap"])
    failed(r, job, "the file changed on the server during the download", result)
    assert len(requests) == 2, requests
    unbootable(r)


def test_a_file_changed_behind_a_server_that_ignores_range_is_refused(rig, cloud):
    r, job, requests, result = update(rig, cloud, ["truncate %d" % CUT, "swap+ignore-range"])
    failed(r, job, "the file changed on the server during the download", result)
    unbootable(r)


def test_a_file_changed_without_etags_fails_on_its_md5(rig, cloud):
    # No ETag to compare: the mix of two files is whole, but its MD5 is not the document's.
    r, job, requests, result = update(rig, cloud, ["truncate %d" % CUT, "swap"], etag=False)
    ex = r.execution(job)
    assert ex.status == "FAILED" and ex.status_details["step"] == "verify", (ex, result.console)
    assert "MD5 mismatch" in ex.status_details["reason"], ex.status_details
    assert r.version() == "1.0.0"
    unbootable(r)


def test_a_server_that_sends_another_range_is_refused(rig, cloud):
    r, job, requests, result = update(rig, cloud, ["truncate %d" % CUT, "other-range 0"])
    failed(r, job, "asked for bytes from %d, the server sent them from 0" % AT, result)
    unbootable(r)


# --- the transport alone (fota/https.py), byte for byte -----------------------------------

def test_range_ignored_gives_the_bytes_from_the_offset(pki, blob):
    with HttpPeer(blob, pki["cert"], pki["key"], ["ignore-range"]) as s:
        got = run_json(DOWNLOAD.format(ca=str(pki["ca_der"]), url=s.url, start=8191, timeout=5))
    assert got == {"n": len(blob) - 8191, "total": len(blob), "md5": hashlib.md5(blob[8191:]).hexdigest()}


@pytest.mark.parametrize("start,error", [
    (200_000, None),  # the whole file dropped: nothing left, not an error
    (200_001, "HTTPError: asked for bytes from 200001 of a 200000-byte file"),
], ids=["to the end", "past the end"])
def test_range_ignored_past_the_end(pki, blob, start, error):
    with HttpPeer(blob, pki["cert"], pki["key"], ["ignore-range"]) as s:
        got = run_json(DOWNLOAD.format(ca=str(pki["ca_der"]), url=s.url, start=start, timeout=5))
    if error:
        assert got == {"error": error}
    else:
        assert got == {"n": 0, "total": len(blob), "md5": hashlib.md5(b"").hexdigest()}


FILE = """
import json
from fota.https import File
f = File({url!r}, open({ca!r}, "rb").read())
out = []
for start in (0, 4096):
    try:
        r = f.open(start); out.append([r.status, r.etag.decode() if r.etag else None]); r.close()
    except Exception as e:
        out.append("%s: %s" % (type(e).__name__, e))
print(json.dumps(out))
"""


@pytest.mark.parametrize("faults,etag,second", [
    ([None, None], True, 206),
    ([None, "swap"], True, "HTTPError: the file changed on the server during the download (ETag \"{a}\", now \"{b}\")"),
    ([None, "swap"], False, 206),  # no ETag: nothing to compare here
], ids=["same file", "changed", "changed, no ETag"])
def test_file_keeps_the_first_etag(pki, blob, faults, etag, second):
    from tests.device.peers import changed

    with HttpPeer(blob, pki["cert"], pki["key"], faults, etag=etag) as s:
        got = run_json(FILE.format(url=s.url, ca=str(pki["ca_der"])))
    a, b = hashlib.md5(blob).hexdigest(), hashlib.md5(changed(blob)).hexdigest()
    assert got[0] == [200, '"%s"' % a if etag else None]
    if second == 206:
        assert got[1] == [206, got[0][1]]
    else:
        assert got[1] == second.format(a=a, b=b)
