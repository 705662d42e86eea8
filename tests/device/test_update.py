"""The whole FOTA flow on the emulated ESP32, against the local AWS IoT stand-in."""

from emulator.flash import Flash, create_flash
from tests.device.rig import firmware
from tests.reliability.board import OTA_1, ops_in


def test_update_reboots_confirms_and_succeeds(rig):
    r = rig()
    assert r.boot_slot() == "ota_0"
    new = firmware("1.0.1", size=1_500_000)
    job = r.publish(new)
    result = r.run()
    console = result.console
    assert result.exit_reason == "main-returned", console
    assert r.boot_slot() == "ota_1" and r.version() == "1.0.1"
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", (ex, console)
    assert ex.status_details["version"] == "1.0.1"
    assert ex.status_details["from_version"] == "1.0.0"
    assert "fota: [confirm] firmware 1.0.1 confirmed" in console
    assert result.boot_count == 2


def test_firmware_that_never_confirms_is_rolled_back(rig):
    r = rig()
    before = r.running_slot_bytes()
    # The new firmware resets itself at every boot before it can confirm.
    bad = firmware("1.0.1", payload={"_boot.py": "import machine\nmachine.reset()\n"})
    job = r.publish(bad)
    result = r.run(max_boots=5)
    assert result.exit_reason == "main-returned", result.console
    assert r.boot_slot() == "ota_0" and r.version() == "1.0.0"
    assert r.running_slot_bytes() == before
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert ex.status_details["reason"] == "rolled back: firmware 1.0.1 did not confirm"


def test_failed_self_test_rolls_back_with_its_reason(rig):
    r = rig()
    bad = firmware("1.0.2", payload={
        "checks.py": "def run(jobs):\n    return False, 'sensor bus silent'\n"})
    job = r.publish(bad)
    result = r.run(max_boots=5)
    assert result.exit_reason == "main-returned", result.console
    assert r.version() == "1.0.0"
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert ex.status_details["reason"] == "rolled back: self-test failed: sensor bus silent"


def test_job_cancelled_during_the_trial_boot_keeps_the_tested_firmware(rig):
    import time

    from emulator.device import Device
    from emulator.flash import Flash

    r = rig()
    # The new firmware takes a few seconds to start: time enough to cancel its job. (Its own
    # frozen _boot.py replaces the port's, so it mounts the filesystem itself.)
    slow = firmware("1.0.1", payload={"_boot.py": "import time\ntime.sleep(3)\nimport vfs\n"
                                                  "from flashbdev import bdev\nvfs.mount(bdev, '/')\n"})
    job = r.publish(slow)
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(max_boots=3, timeout=60)
    try:
        deadline = time.monotonic() + 30
        while "resetting into the new firmware" not in dev.console:
            assert time.monotonic() < deadline, dev.console
            time.sleep(0.05)
        r.cloud.cancel_job(job, force=True)
        result = dev.wait(60)
    finally:
        dev.stop()
    assert result.exit_reason == "main-returned", dev.console
    assert f"job {job} is gone; firmware 1.0.1 confirmed" in dev.console
    assert r.execution(job).status == "CANCELED"
    f = Flash(r.flash)
    assert f.boot_slot() == "ota_1"
    assert max((e for e in f.otadata() if e.crc_ok), key=lambda e: e.seq).state == 2  # VALID
    assert not f.has_file("fota.json")  # the record of the update is gone from the flash


def test_nordic_aws_fota_document(rig):
    # nRF Connect SDK's aws_fota document: HTTPS host and path, no hash (the image's own
    # SHA-256 is what set_boot checks).
    from urllib.parse import urlsplit

    r = rig()
    new = firmware("1.0.1")
    path = r.folder / "nordic.bin"
    path.write_bytes(new)
    key = f"fw/{r.thing}-nordic.bin"
    r.cloud.upload(path, key)
    u = urlsplit(r.cloud.presign(key, 600))
    doc = {"operation": "app_fw_update", "fwversion": "v1.0.1", "size": len(new),
           "location": {"protocol": "https:", "host": u.netloc, "path": u.path.lstrip("/") + "?" + u.query}}
    fields = {k: None for k in ("bc_idx", "bc_crc", "bc_size", "bc_url")}  # drop the FOTA fields
    fields.update(doc)
    job = r.publish(new, **fields)
    result = r.run()
    assert result.exit_reason == "main-returned", result.console
    assert "no hash in the document" in result.console
    assert r.execution(job).status == "SUCCEEDED"
    assert r.version() == "1.0.1"


def test_auto_reset_off_returns_true_and_mqtt_can_stay_open(rig):
    # Zerynth's API: with auto_reset=False the flow returns True and the caller resets;
    # disconnect_mqtt=False keeps the MQTT session open during the download.
    from tests.device.rig import ONCE

    app = ONCE.replace(
        "fota.handle_fota_jobs(jobs, force=True)",
        "need = fota.handle_fota_jobs(jobs, force=True, disconnect_mqtt=False, auto_reset=False)\n"
        "print('app: reset needed', need, 'connected', conn.connected())\n"
        "if need:\n"
        "    fota.reset()")
    r = rig(app=app)
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    assert "app: reset needed True connected True" in result.console, result.console
    assert "app: reset needed False connected True" in result.console  # after the trial boot
    assert r.execution(job).status == "SUCCEEDED"
    assert r.version() == "1.0.1"


def _slot_ops(r, image, ota_1):
    """Update to `image` on a fresh board whose ota_1 holds `ota_1`: the logged flash erases
    and writes in ota_1."""
    create_flash(r.flash, firmware("1.0.0"), ota_1=ota_1)
    job = r.publish(image)
    log = r.folder / "ops.log"
    result = r.run(env={"ESP32_OPLOG": str(log)})
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.boot_slot() == "ota_1" and r.version() == "1.0.1"
    assert Flash(r.flash).slot_image("ota_1") == image
    return ops_in(log, *OTA_1)


def test_same_image_again_takes_no_erase_or_write_in_the_slot(rig):
    # A re-published image whose bytes the target slot already holds (every sector is read
    # and compared): the slot is neither erased nor written, and the update still succeeds.
    new = firmware("1.0.1", size=40_000)
    assert _slot_ops(rig(), new, new) == []


def test_image_that_differs_in_one_sector_writes_only_that_sector(rig):
    new = firmware("1.0.1", size=40_000)
    old = bytearray(new)
    old[6 * 4096 + 100] ^= 0x5A  # sector 6 differs
    sector = "%x %x" % (OTA_1[0] + 6 * 4096, 4096)
    assert _slot_ops(rig(), new, bytes(old)) == ["E " + sector, "W " + sector]
