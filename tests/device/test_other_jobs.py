"""Jobs the device does not carry out never hold up a firmware update queued behind them: the
application's job_cbk takes the ones it knows, the rest end REJECTED with the reason (real
MicroPython on the emulated board, real broker, the local stand-in's jobs service)."""

from __future__ import annotations

import time
import uuid

import pytest

from emulator.device import Device
from fotatools.backend import Rollout
from tests.device.rig import ONCE, firmware


def other_job(r, doc: object) -> str:
    job_id = f"other-{uuid.uuid4().hex[:10]}"
    r.cloud.create_job(job_id, [r.cloud.thing_arn(r.thing)], doc, Rollout())
    return job_id


def wait_for(pred, dev: Device, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{dev.console}")


@pytest.mark.row("non-FOTA jobs queued ahead of an update")
@pytest.mark.parametrize("ahead", [1, 11, 50])
def test_update_behind_jobs_the_device_does_not_carry_out(rig, ahead):
    r = rig()
    others = [other_job(r, {"operation": "reboot", "n": i}) for i in range(ahead)]
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    assert result.exit_reason == "main-returned", result.console
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", (ex, result.console)
    assert r.version() == "1.0.1"
    for o in others:
        ex = r.execution(o)
        assert ex.status == "REJECTED", ex
        assert ex.status_details["reason"] == "unsupported operation: reboot", ex


# The application's job_cbk: it carries out "blink" jobs itself (ends them SUCCEEDED) and
# refuses the rest by returning False.
WITH_CBK = ONCE.replace(
    "fota.handle_fota_jobs(jobs, force=True)",
    """def job_cbk(job):
    if job.document.get("operation") != "blink":
        return False
    print("app: blink", job.document.get("times"))
    job.update("SUCCEEDED", {"blinked": job.document.get("times")})
    return True
fota.handle_fota_jobs(jobs, force=True, job_cbk=job_cbk)""")


def test_job_cbk_takes_its_jobs_and_the_rest_are_rejected(rig):
    r = rig(app=WITH_CBK)
    blinks = [other_job(r, {"operation": "blink", "times": i}) for i in range(6)]
    refused = [other_job(r, {"operation": "reboot"}), other_job(r, {"task": "no operation field"})]
    blinks += [other_job(r, {"operation": "blink", "times": i}) for i in range(6, 12)]
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    assert result.exit_reason == "main-returned", result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    for i, b in enumerate(blinks):
        ex = r.execution(b)
        assert (ex.status, ex.status_details) == ("SUCCEEDED", {"blinked": str(i)}), ex
    assert [r.execution(j).status_details["reason"] for j in refused] == [
        "unsupported operation: reboot", "unsupported operation: (none)"]
    assert all(r.execution(j).status == "REJECTED" for j in refused)
    assert result.console.count("app: blink") == 12  # each offered once


# An application that keeps a long job of its own IN_PROGRESS at the head of the queue: a
# firmware job queued behind it changes the pending list (notify) but not the next job
# (no notify-next). The device must still wake and carry it out.
LONG = ONCE.replace(
    "fota.handle_fota_jobs(jobs, force=True)",
    """import time
def job_cbk(job):
    if job.document.get("operation") != "long":
        return False
    if job.status != "IN_PROGRESS":
        job.update("IN_PROGRESS", {"step": "running"})
    return True
fota.handle_fota_jobs(jobs, force=True, job_cbk=job_cbk)
print("app: ready", fota.version())
if fota.version() == "1.0.0":
    end = time.ticks_add(time.ticks_ms(), 60000)
    while time.ticks_diff(end, time.ticks_ms()) > 0:
        if jobs.wait(1000):
            fota.handle_fota_jobs(jobs, job_cbk=job_cbk)""")


def test_a_job_queued_behind_a_running_one_wakes_the_device(rig):
    r = rig(app=LONG)
    long_job = other_job(r, {"operation": "long"})
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(max_boots=3, timeout=120)
    try:
        wait_for(lambda: "app: ready 1.0.0" in dev.console, dev, "the device to start")
        assert r.execution(long_job).status == "IN_PROGRESS"
        job = r.publish(firmware("1.0.1"))
        wait_for(lambda: r.execution(job).status == "SUCCEEDED", dev, "SUCCEEDED", timeout=50)
    finally:
        dev.stop()
    assert r.version() == "1.0.1"
    assert r.execution(long_job).status == "IN_PROGRESS"  # still the application's


def test_documents_that_are_not_objects_are_rejected(rig):
    # AWS IoT takes any JSON value as a job document; only an object can be an update.
    r = rig(app=WITH_CBK)
    odd = [other_job(r, doc) for doc in ([1, 2], "blink", 7, None, True)]
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    assert result.exit_reason == "main-returned", result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    for o in odd:
        ex = r.execution(o)
        assert (ex.status, ex.status_details) == (
            "REJECTED", {"step": "jobs", "reason": "job document is not a JSON object"}), ex
    assert "app: blink" not in result.console  # job_cbk is offered objects only


MAIN_WITH_JOBS = """import fota


def blink(job):
    if job.document.get("operation") != "blink":
        return False
    job.update("SUCCEEDED", {"blinked": "yes"})
    return True


fota.run(job_cbk=blink)
"""


def test_the_loop_gives_the_application_its_jobs_and_rejects_the_rest(rig):
    # A main.py that registers its job callback with fota.run gets its jobs; the rest end REJECTED.
    r = rig(app=MAIN_WITH_JOBS)
    blink = other_job(r, {"operation": "blink"})
    reboot = other_job(r, {"operation": "reboot"})
    job = r.publish(firmware("1.0.1"))
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(timeout=120)
    try:
        wait_for(lambda: r.execution(job).status == "SUCCEEDED", dev, "SUCCEEDED", timeout=90)
    finally:
        dev.stop()
    assert (r.execution(blink).status, r.execution(blink).status_details) == ("SUCCEEDED", {"blinked": "yes"})
    assert r.execution(reboot).status == "REJECTED"
    assert r.execution(reboot).status_details["reason"] == "unsupported operation: reboot"
    assert "app: error" not in dev.console


def test_reasons_fit_what_aws_takes_in_status_details(rig):
    # AWS takes statusDetails values of 1-1024 characters without control characters: a reason
    # that quotes a long or odd document still ends the job, cut and cleaned, instead of an
    # update the service refuses (which would leave the job pending and the loop retrying).
    r = rig()
    long_op = other_job(r, {"operation": "x" * 3000})
    odd_op = other_job(r, {"operation": "a\nb\u0000c\u007f\u0085\u200b\u00e9"})
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    ex = r.execution(long_op)
    assert ex.status == "REJECTED", (ex, result.console)
    reason = ex.status_details["reason"]
    assert len(reason) <= 1024 and reason.startswith("unsupported operation: xxx"), reason
    ex = r.execution(odd_op)
    assert ex.status == "REJECTED", (ex, result.console)
    assert ex.status_details["reason"] == "unsupported operation: a b c????", ex
