"""A failed download leaves what it did not write untouched: the target slot keeps its previous
image byte for byte when no byte of the new one arrived (the bootloader can still fall back to
it), and never holds a bootable mix of two images once some of the new one was written."""

from __future__ import annotations

import hashlib
import socket

import pytest

from emulator.device import Device
from emulator.flash import Flash, create_flash
from emulator.flashfmt import ImageError
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from tests.device.rig import device_folder, firmware
from tests.device.servers import FirmwareServer

NEW = firmware("1.0.1", size=200_000)
OLD = firmware("0.9.0", size=150_000)  # what the target slot held before


def with_previous_image(r) -> bytes:
    """Put OLD into ota_1 (the slot the update targets); -> the slot's bytes."""
    p = Flash(r.flash).partition("ota_1")
    with open(r.flash, "r+b") as f:
        f.seek(p.offset)
        f.write(OLD)
    Flash(r.flash).verify_slot("ota_1")  # a valid image the bootloader could fall back to
    return Flash(r.flash).slot_bytes("ota_1")


@pytest.fixture()
def server(cloud):
    """HTTPS with the cloud's CA, for faults the object store has not."""
    _, home = cloud
    paths = Paths(home)
    srv = LocalCA(paths.ca).existing(paths.server, "server")
    with FirmwareServer({"fw.bin": NEW}, srv.cert_pem, srv.key_pem) as s:
        yield s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failed(r, job, reason, **kw):
    result = r.run(max_boots=2, **kw)
    assert result.exit_reason == "main-returned", result.console
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    assert reason in ex.status_details["reason"], ex.status_details
    assert Flash(r.flash).boot_slot() == "ota_0"
    return result


NO_BYTE = {
    "unreachable port": (lambda s: f"https://localhost:{closed_port()}/fw.bin", "ECONNREFUSED"),
    "unknown host": (lambda s: "https://no-such-host.invalid/fw.bin", "addrinfo"),
    "HTTP 403 before the body": (lambda s: s.url("/status/403/fw.bin"), "HTTP 403"),
    "server announces another size": (lambda s: s.url("/long/fw.bin"), "server has"),
}


@pytest.mark.parametrize("fault", list(NO_BYTE))
def test_no_byte_arrived_the_slot_keeps_its_image(rig, server, fault):
    url, reason = NO_BYTE[fault]
    r = rig()
    before, running = with_previous_image(r), r.running_slot_bytes()
    job = r.publish(NEW, bc_url=url(server))
    failed(r, job, reason)
    assert Flash(r.flash).slot_bytes("ota_1") == before
    assert r.running_slot_bytes() == running


def unbootable(r) -> None:
    f = Flash(r.flash)
    assert f.slot_bytes("ota_1")[:4096] == b"\xff" * 4096  # the header sector is erased
    assert f.app_desc("ota_1") is None
    with pytest.raises(ImageError):
        f.verify_slot("ota_1")


MID_WAY = {
    "body ends early (3 tries)": ({"bc_url": "/short/fw.bin"}, "connection closed with 1000 bytes to go"),
    "wrong MD5": ({"bc_crc": "0" * 32}, "MD5 mismatch"),
    "image that does not verify": ({"image": "broken"}, "image does not verify"),
}


@pytest.mark.parametrize("fault", list(MID_WAY))
def test_failure_after_bytes_were_written_leaves_no_bootable_slot(rig, server, fault):
    change, reason = MID_WAY[fault]
    r = rig()
    with_previous_image(r)
    image = NEW
    if change.get("image") == "broken":
        b = bytearray(NEW)
        b[5000] ^= 0xFF  # the document's MD5 matches; the image's own SHA-256 does not
        image = bytes(b)
        server.files["fw.bin"] = image
    doc = {"bc_url": server.url(change.get("bc_url", "/fw/fw.bin"))}
    doc.update({k: v for k, v in change.items() if k not in ("bc_url", "image")})
    job = r.publish(image, **doc)
    failed(r, job, reason)
    unbootable(r)


def test_resumed_download_that_fails_before_a_byte_erases_the_header(rig, server):
    # A power cut mid-download; at the next boot the file is gone (404): nothing arrives in
    # this boot, but the slot holds the first part of the new image from the last one.
    r = rig()
    with_previous_image(r)
    job = r.publish(NEW, bc_url=server.url("/fw/fw.bin"))
    cut = r.run(max_boots=1, cut_at=60)
    assert cut.boots[0].end == "power-cut", cut.console
    assert Flash(r.flash).slot_bytes("ota_1")[:4096] == NEW[:4096], cut.console
    del server.files["fw.bin"]
    result = failed(r, job, "HTTP 404")
    assert "resuming" not in result.console  # the 404 came before a byte of this boot
    unbootable(r)


def test_update_in_flight_whose_job_is_cancelled_leaves_no_bootable_slot(rig, server):
    r = rig()
    with_previous_image(r)
    job = r.publish(NEW, bc_url=server.url("/fw/fw.bin"))
    cut = r.run(max_boots=1, cut_at=60)
    assert cut.boots[0].end == "power-cut", cut.console
    r.cloud.cancel_job(job, force=True)
    result = r.run(max_boots=1)
    assert f"job {job} is gone; its record is dropped" in result.console, result.console
    unbootable(r)


WRITER = """
from fota import otaslot
from fota.otaslot import SlotError, SlotWriter

def err(f):
    try:
        f()
        return "no error"
    except SlotError as e:
        return str(e)

run, other = otaslot.running(), otaslot.slots()[1]
print("app: running", err(lambda: SlotWriter(run, 8192)))
print("app: invalidate running", err(lambda: otaslot.invalidate(run)))

class Source:  # n bytes of 0x5A, then the end
    def __init__(self, n):
        self.n = n
    def readinto(self, buf):
        k = min(len(buf), self.n)
        buf[:k] = b"Z" * k
        self.n -= k
        return k

def head():
    b = bytearray(16)
    other.readblocks(0, b)
    return bytes(b)

w = SlotWriter(other, 65536)
w.abort()
print("app: nothing written", head() == HEAD)
w = SlotWriter(other, 65536)
w.feed_from(Source(100))  # less than a sector: still in the buffer
w.abort()
print("app: part of a sector", head() == HEAD)
w = SlotWriter(other, 65536)
while w.written < 3 * 4096 and w.feed_from(Source(4096)):
    pass
w.abort()
print("app: three sectors", head())
"""


def test_slot_writer_refuses_the_running_slot_and_aborts_only_what_it_wrote(tmp_path):
    fs = device_folder(tmp_path / "fs", f"HEAD = {OLD[:16]!r}\n" + WRITER)
    flash = tmp_path / "flash.bin"
    create_flash(flash, firmware("1.0.0"), ota_1=OLD)
    running = Flash(flash).slot_bytes("ota_0")
    with Device(flash, fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    assert "app: running refusing to write the running slot" in r.console
    assert "app: invalidate running refusing to write the running slot" in r.console
    assert "app: nothing written True" in r.console
    assert "app: part of a sector True" in r.console
    assert "app: three sectors %r" % (b"\xff" * 16) in r.console
    f = Flash(flash)
    assert f.slot_bytes("ota_0") == running
    assert f.slot_bytes("ota_1")[4096:3 * 4096] == b"Z" * 8192  # sectors 1-2 as written
    assert hashlib.sha256(f.slot_bytes("ota_1")[3 * 4096:len(OLD)]).digest() == \
        hashlib.sha256(OLD[3 * 4096:]).digest()


def test_next_update_that_fails_before_a_byte_leaves_no_part_of_the_last_one(rig, server):
    # A power cut mid-download, then that job is cancelled and another one comes whose URL is
    # refused: the slot still holds the head of the first image over the tail of the old one.
    r = rig()
    with_previous_image(r)
    first = r.publish(NEW, bc_url=server.url("/fw/fw.bin"))
    cut = r.run(max_boots=1, cut_at=60)
    assert cut.boots[0].end == "power-cut", cut.console
    r.cloud.cancel_job(first, force=True)
    second = r.publish(NEW, bc_url=server.url("/status/403/fw.bin"))
    failed(r, second, "HTTP 403")
    unbootable(r)
