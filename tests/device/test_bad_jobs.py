"""Every bad job ends FAILED with a reason, and the running firmware is never touched."""

import hashlib
import time

import pytest

from emulator.bootloader import boot
from emulator.flash import OTADATA_OFFSET, Flash, create_flash
from emulator.flashfmt import SECTOR_SIZE
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from tests.device.rig import firmware
from tests.device.servers import FirmwareServer

SLOT = 0x180000
NEW = firmware("1.0.1", size=200_000)
MD5 = hashlib.md5(NEW).hexdigest()

# (document changes, reason the job must end with)
DOCS = [
    ({"bc_idx": None}, "check: bad fota data: bc_idx missing"),
    ({"bc_idx": "1"}, "check: bad fota data: bc_idx must be an integer"),
    ({"bc_idx": 0}, "check: bad fota data: bc_idx 0 is the running slot"),
    ({"bc_idx": 2}, "check: bad fota data: bc_idx 2: no such OTA slot (0..1)"),
    ({"bc_size": None}, "check: bad fota data: bc_size missing"),
    ({"bc_size": 1.5}, "check: bad fota data: bc_size must be an integer"),
    ({"bc_size": SLOT + 4096}, "check: bad fota data: bc_size %d does not fit the %d-byte slot" % (SLOT + 4096, SLOT)),
    ({"bc_crc": None}, "check: bad fota data: bc_crc must be the image's MD5 as 32 hex digits"),
    ({"bc_crc": MD5[:-1]}, "check: bad fota data: bc_crc must be the image's MD5 as 32 hex digits"),
    ({"bc_url": None}, "check: bad fota data: bc_url missing"),
    ({"bc_url": "http://localhost/fw.bin"}, "check: bad fota data: bc_url must be an https URL"),
    ({"bc_crc": "0" * 32}, "verify: MD5 mismatch: image %s, document %s" % (MD5, "0" * 32)),
    ({"bc_size": len(NEW) - 4096}, "download: server has %d bytes, document says %d" % (len(NEW), len(NEW) - 4096)),
    ({"bc_size": len(NEW) + 4096}, "download: server has %d bytes, document says %d" % (len(NEW), len(NEW) + 4096)),
]


def booted_once(before, otadata, scratch):
    """otadata as the bootloader alone leaves it after one boot from `otadata` (its first boot
    records ota_0), found by booting a copy of that flash."""
    path = create_flash(scratch, before)
    with open(path, "r+b") as fl:
        for i, e in enumerate(otadata):
            fl.seek(OTADATA_OFFSET + i * SECTOR_SIZE)
            fl.write(e.pack())
    boot(path, log=None)
    return Flash(path).otadata()


def check_untouched(r, before, otadata):
    """The running slot as it was, otadata as one boot of the bootloader leaves it (no other
    write), and the other slot unbootable: never written, or its header erased."""
    f = Flash(r.flash)
    assert f.boot_slot() == "ota_0"
    assert r.running_slot_bytes() == before
    expected = booted_once(before, otadata, r.folder / "booted-once.bin")
    assert [e.pack() for e in f.otadata()] == [e.pack() for e in expected], \
        ([e.__dict__ for e in f.otadata()], [e.__dict__ for e in expected])
    assert f.app_desc("ota_1") is None, f.app_desc("ota_1")


def failed_with(r, job, reason):
    result = r.run(max_boots=2)
    assert result.exit_reason == "main-returned", result.console
    assert result.boot_count == 1, result.console  # no reset: nothing to test
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    step, _, why = reason.partition(": ")
    assert ex.status_details["step"] == step, ex.status_details
    assert why in ex.status_details["reason"], ex.status_details
    return result


@pytest.mark.parametrize("change,reason", DOCS, ids=[f"{list(c)[0]}-{i}" for i, (c, _) in enumerate(DOCS)])  # no image bytes in ids: they differ per process
def test_bad_document(rig, change, reason):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    job = r.publish(NEW, **change)
    failed_with(r, job, reason)
    check_untouched(r, before, otadata)


def test_body_that_is_not_an_app_image(rig):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    junk = bytes(range(256)) * 800
    job = r.publish(junk)
    failed_with(r, job, "verify: not an ESP32 app image")
    check_untouched(r, before, otadata)


def test_image_whose_hash_does_not_verify_is_not_booted(rig):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    broken = bytearray(NEW)
    broken[5000] ^= 0xFF  # the document's MD5 matches, the image's own SHA-256 does not
    job = r.publish(bytes(broken))
    failed_with(r, job, "boot: image does not verify (")
    check_untouched(r, before, otadata)  # set_boot refused it: its header is erased too


@pytest.mark.row("cross-thing attempts and bad URLs")
@pytest.mark.parametrize("fault", ["tampered", "expired"])
def test_tampered_or_expired_url_gets_403(rig, fault):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    path = r.folder / "fw.bin"
    path.write_bytes(NEW)
    key = f"fw/{r.thing}.bin"
    r.cloud.upload(path, key)
    if fault == "tampered":
        url = r.cloud.presign(key, 600).replace("fw/", "fw/x", 1)
    else:
        url = r.cloud.presign(key, 1)
        expires = int(url.split("X-Fota-Expires=")[1].split("&")[0])
        while time.time() <= expires + 0.05:  # until it has expired, however long that took
            time.sleep(0.05)
    job = r.publish(NEW, bc_url=url)
    failed_with(r, job, "download: HTTP 403")
    check_untouched(r, before, otadata)


@pytest.fixture()
def faulty_server(cloud):
    """An HTTPS server whose certificate chains to the cloud's CA, for faults the store has not."""
    _, home = cloud
    paths = Paths(home)
    ca = LocalCA(paths.ca)
    srv = ca.existing(paths.server, "server")
    with FirmwareServer({"fw.bin": NEW}, srv.cert_pem, srv.key_pem) as s:
        yield s


@pytest.mark.parametrize("path,reason", [
    ("/status/403/fw.bin", "download: HTTP 403"),
    ("/status/404/fw.bin", "download: HTTP 404"),
    ("/status/500/fw.bin", "download: HTTP 500"),
    ("/short/fw.bin", "download: connection closed with 1000 bytes to go"),
    ("/long/fw.bin", "download: server has"),
])
def test_server_faults(rig, faulty_server, path, reason):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    job = r.publish(NEW, bc_url=faulty_server.url(path))
    failed_with(r, job, reason)
    check_untouched(r, before, otadata)


def test_broken_connection_resumes_from_the_last_whole_sector(rig, faulty_server):
    r = rig()
    job = r.publish(NEW, bc_url=faulty_server.url("/drop/50000/fw.bin"))
    result = r.run()
    assert result.exit_reason == "main-returned", result.console
    assert r.execution(job).status == "SUCCEEDED"
    ranges = [rng for p, rng in faulty_server.requests if p.startswith("/drop/")]
    assert ranges == [None, "bytes=49152-"]  # 12 whole sectors were kept


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_server_not_chaining_to_the_ca(rig, pki):
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    with FirmwareServer({"fw.bin": NEW}, pki["rogue_cert"], pki["rogue_key"]) as s:
        job = r.publish(NEW, bc_url=s.url("/fw/fw.bin"))
        failed_with(r, job, "download: certificate")
        assert s.requests == []
    check_untouched(r, before, otadata)


def test_flash_that_does_not_hold_what_was_written(rig):
    # A worn cell in the target slot keeps one bit at 0: the sector read back differs.
    r = rig()
    before, otadata = r.running_slot_bytes(), Flash(r.flash).otadata()
    off = next(i for i in range(5 * 4096, len(NEW)) if NEW[i] & 1)
    job = r.publish(NEW)
    result = r.run(max_boots=2, env={"ESP32_STUCK_AT": hex(0x190000 + off)})
    assert result.boot_count == 1, result.console
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert ex.status_details == {"step": "download", "reason": "flash read-back differs in sector 5"}
    check_untouched(r, before, otadata)


def test_oversized_values_are_quoted_short_and_never_stall_the_loop(rig, tmp_path):
    # A reason that quoted a document's 8,000-character value whole took more heap than a
    # board has (a MemoryError at every turn of the loop: the job stayed QUEUED and blocked
    # every job behind it). Values are quoted to 40 characters and their length.
    import uuid

    from fotatools.backend import TERMINAL_STATES, Rollout
    from tests.reliability.board import MAIN, Running

    r = rig(app=MAIN)
    big = "9" * 8000
    docs = {"fota": ({"operation": "fota", "bc_idx": 1, "bc_crc": MD5, "bc_size": len(NEW),
                      "bc_url": "https://127.0.0.1:1/fw.bin", "bc_enc": big}, "FAILED"),
            "operation": ({"operation": big}, "REJECTED"),
            "afr_ota": ({"afr_ota": {"protocols": [big], "files": [{
                "fileid": 0, "filesize": len(NEW), "update_data_url": "https://127.0.0.1:1/fw.bin",
                "sig-sha256-ecdsa": "MEUCIQ=="}]}}, "FAILED")}
    arn = r.cloud.thing_arn(r.thing)
    jobs = {}
    for name, (doc, _) in docs.items():
        jobs[name] = f"big-{name}-{uuid.uuid4().hex[:6]}"
        r.cloud.create_job(jobs[name], [arn], doc, Rollout())
    with Running(r, tmp_path / "ops.log") as board:
        assert board.until(lambda: all(r.execution(j).status in TERMINAL_STATES
                                       for j in jobs.values()), timeout=120), board.dev.console
        assert board.dev.running
        console = board.dev.console
    assert "MemoryError" not in console, console
    for name, (_, status) in docs.items():
        ex = r.execution(jobs[name])
        why = ex.status_details["reason"]
        assert ex.status == status and "9" * 30 in why and len(why) < 200, (name, ex)
        assert "... (8000 characters)" in why or "... (8004 characters)" in why, (name, ex)
