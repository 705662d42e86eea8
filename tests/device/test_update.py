"""The whole FOTA flow on the emulated ESP32, against the local AWS IoT stand-in."""

from tests.device.rig import firmware


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
        "selftest.py": "def run(jobs):\n    return False, 'sensor bus silent'\n"})
    job = r.publish(bad)
    result = r.run(max_boots=5)
    assert result.exit_reason == "main-returned", result.console
    assert r.version() == "1.0.0"
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert ex.status_details["reason"] == "rolled back: self-test failed: sensor bus silent"
