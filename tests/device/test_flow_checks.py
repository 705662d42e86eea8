"""Checks of the FOTA flow that a test can only see from outside the device: the image for
another chip, the download's retry limit (counted at the server), a server certificate for
another name, the limit on interrupted downloads, and whether the MQTT session stays open
during the download (seen in the broker's own log)."""

import hashlib
import json
import re
import time

import pytest

from emulator.device import Device
from emulator.flash import OTA_1_OFFSET, Flash
from emulator.image import build_app_image
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from tests.device.rig import ONCE, firmware
from tests.device.servers import FirmwareServer
from tests.device.test_bad_jobs import check_untouched, failed_with

NEW = firmware("1.0.1", size=200_000)


@pytest.fixture()
def cloud_ca(cloud) -> LocalCA:
    _, home = cloud
    return LocalCA(Paths(home).ca)


@pytest.fixture()
def server(cloud, cloud_ca):
    """An HTTPS server whose certificate (for localhost) chains to the cloud's CA."""
    _, home = cloud
    srv = cloud_ca.existing(Paths(home).server, "server")
    with FirmwareServer({"fw.bin": NEW}, srv.cert_pem, srv.key_pem) as s:
        yield s


def test_image_for_another_chip_is_refused_before_set_boot(rig):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    s3 = build_app_image("1.0.1", size=200_000, chip_id=9)  # an ESP32-S3 image
    job = r.publish(s3)
    failed_with(r, job, "verify: image is for chip id 9, not this chip")
    check_untouched(r, before, otadata)


def test_download_gives_up_after_three_tries(rig, server):
    # Every request breaks after 10 000 bytes: each try makes some progress, none finishes.
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    job = r.publish(NEW, bc_url=server.url("/dropall/10000/fw.bin"))
    result = failed_with(r, job, "download: connection closed with")
    assert result.console.count("connection lost") == 2, result.console
    ranges = [rng for p, rng in server.requests if p.startswith("/dropall/")]
    assert ranges == [None, "bytes=8192-", "bytes=16384-"]  # 3 tries, each from its last whole sector
    check_untouched(r, before, otadata)


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_server_certificate_for_another_name_is_refused(rig, cloud_ca, tmp_path):
    # The right CA and server usage, but issued for other.example: the URL says localhost.
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    other = LocalCA.save(cloud_ca.issue("other.example", server=True, names=["other.example"]),
                         tmp_path / "other", "server")
    with FirmwareServer({"fw.bin": NEW}, other.cert_pem, other.key_pem) as s:
        job = r.publish(NEW, bc_url=s.url("/fw/fw.bin"))
        failed_with(r, job, "download: The certificate Common Name (CN) does not match")  # mbedTLS
        assert s.requests == []  # nothing was asked of it
    check_untouched(r, before, otadata)


def test_a_download_interrupted_three_times_is_not_tried_again(rig):
    # The record says three downloads of this job were cut short (by power cuts): the fourth
    # boot gives up instead of writing again.
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    with open(r.flash, "r+b") as f:  # what the interrupted downloads wrote: the image's start
        f.seek(OTA_1_OFFSET)
        f.write(NEW[:65536])
    assert Flash(r.flash).app_desc("ota_1")["version"] == "1.0.1"
    job = r.publish(NEW)
    rec = {"job": job, "step": "download", "slot": 1, "from": 0, "tries": 3, "old": "1.0.0",
           "md5": hashlib.md5(NEW).hexdigest(), "done": 65536}
    r.put_file("fota.json", json.dumps(rec))
    failed_with(r, job, "download: interrupted 3 times")
    assert r.file("fota.json") is None
    check_untouched(r, before, otadata)


def test_two_interrupted_downloads_are_tried_a_third_time(rig):
    r = rig()
    job = r.publish(NEW)
    rec = {"job": job, "step": "download", "slot": 1, "from": 0, "tries": 2, "old": "1.0.0",
           "md5": hashlib.md5(NEW).hexdigest(), "done": 0}
    r.put_file("fota.json", json.dumps(rec))
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console


# --- disconnect_mqtt, seen at the broker ------------------------------------------------------

def broker_log(cloud) -> str:
    _, home = cloud
    return (Paths(home).broker / "mosquitto.log").read_text(errors="replace")


def sessions(log: str, thing: str) -> list[str]:
    """The thing's session events in the broker's log, in order: "open" and "closed"."""
    out = []
    for line in log.splitlines():
        if re.search(rf"New client connected from \S+ as {re.escape(thing)} ", line):
            out.append("open")
        elif re.search(rf"Client {re.escape(thing)} (disconnected|closed its connection)", line):
            out.append("closed")
    return out


def wait_for(pred, what, dev, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{dev.console}"
        time.sleep(0.05)


@pytest.mark.parametrize("disconnect", [True, False])
def test_disconnect_mqtt_closes_the_session_for_the_download(rig, cloud, server, disconnect):
    app = ONCE.replace("fota.handle_fota_jobs(jobs, force=True)",
                       f"fota.handle_fota_jobs(jobs, force=True, disconnect_mqtt={disconnect})")
    r = rig(app=app)
    job = r.publish(NEW, bc_url=server.url("/hold/fw.bin"))
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(max_boots=4, timeout=120)
    try:
        wait_for(server.held.is_set, "the download", dev)  # the device waits for the body now
        if disconnect:
            wait_for(lambda: sessions(broker_log(cloud), r.thing) == ["open", "closed"],
                     "the broker to see the session closed", dev, timeout=20)
        else:
            assert sessions(broker_log(cloud), r.thing) == ["open"]
        server.release()
        result = dev.wait(120)
    finally:
        dev.stop()
    assert result.exit_reason == "main-returned", dev.console
    assert r.execution(job).status == "SUCCEEDED", dev.console
    # Boot 1: the session, closed for the download and opened again to report (or kept
    # open); boot 2 (the new firmware): one more.
    opened = sessions(broker_log(cloud), r.thing).count("open")
    assert opened == (3 if disconnect else 2), sessions(broker_log(cloud), r.thing)
