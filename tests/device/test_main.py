"""The project's own boot.py and main.py on the emulated board, as a user runs them."""

import json
import time

from emulator.device import Device
from tests.device.rig import ROOT, firmware


def wait_for(pred, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_main_updates_when_a_job_arrives_while_it_runs(rig):
    r = rig(app=(ROOT / "main.py").read_text())
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["telemetry_s"] = 30  # the job must be picked up from the notification, not the timer
    (r.fs / "config.json").write_text(json.dumps(cfg))
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(timeout=180)
    try:
        wait_for(lambda: "app: firmware 1.0.0" in dev.console, what="the device to start")
        time.sleep(1.0)
        job = r.publish(firmware("1.0.1", size=400_000))
        wait_for(lambda: r.execution(job).status == "SUCCEEDED", timeout=90, what="SUCCEEDED")
        wait_for(lambda: "app: firmware 1.0.1" in dev.console, what="the new firmware")
    finally:
        dev.stop()
    assert r.version() == "1.0.1"
    assert "app: error" not in dev.console
