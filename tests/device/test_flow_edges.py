"""lib/fota/flow.py when the board's record of its update (fota.json) is lost between the
download and the trial boot: the job's statusDetails say what was going on."""

from __future__ import annotations

from emulator import flashfs
from tests.device.rig import firmware


def test_a_record_lost_before_the_trial_boot_is_made_again_from_the_job(rig):
    r = rig()
    before = r.boot_slot()
    job = r.publish(firmware("1.1.0"))
    first = r.run(max_boots=1)
    assert r.execution(job).status_details.get("step") == "testing", first.console
    assert r.file("fota.json") is not None
    fs = flashfs.FlashFS(r.flash)
    fs.remove("fota.json")
    fs.save()
    result = r.run(max_boots=3)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console
    assert ex.status_details["version"] == "1.1.0" and ex.status_details["from_version"] == "1.0.0"
    assert ex.status_details["step"] == "confirm"
    assert r.version() == "1.1.0" and r.boot_slot() != before
    assert r.file("fota.json") is None
    # confirmed: another run stays on it
    r.run(max_boots=2)
    assert r.version() == "1.1.0" and r.boot_slot() != before



# main.py that loses the record at the start of a trial boot, before the loop looks at it
LOSE = """import os
import fota
if fota.testing():
    try:
        os.remove("fota.json")
        print("app: record lost")
    except OSError:
        pass
"""


def test_an_application_record_lost_before_its_trial_is_made_again_from_the_job(rig):
    from tests.device import appimage
    from tests.device.test_apps import GOOD, MAIN, publish_app, record, seeded
    from tests.device.test_main import run_until

    r = seeded(rig, app=LOSE + MAIN, telemetry_s=1)
    job = publish_app(r, appimage.app("2.1.0", GOOD))
    result, console = run_until(r, job, "SUCCEEDED")
    assert "app: record lost" in console
    details = r.execution(job).status_details
    assert details["version"] == "2.1.0" and details["from_version"] == "2.0.0", (details, console)
    assert details["target"] == "app" and details["step"] == "confirm"
    assert record(r)["slot"] == 1 and record(r)["trial"] is None
