"""The project's own boot.py and main.py on the emulated board, as a user runs them."""

import json
import os
import time

from emulator.device import Device
from tests.device.rig import ROOT, firmware, frozen_library


def wait_for(pred, timeout=60.0, what="condition", dev=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (":\n" + dev.console if dev else ""))


def test_main_updates_when_a_job_arrives_while_it_runs(rig):
    r = rig(app=(ROOT / "main.py").read_text())
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["telemetry_s"] = 30  # the job must be picked up from the notification, not the timer
    cfg["wifi"] = {"ssid": "workshop", "password": "secret"}  # boot.py joins it
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
    assert dev.console.count("boot: wifi 127.0.0.1") == 2  # at both boots


def main_rig(rig, **cfg_changes):
    r = rig(app=(ROOT / "main.py").read_text())
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg.update(cfg_changes)
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r


def test_a_dead_broker_never_ends_the_loop(rig):
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = main_rig(rig, port=port)
    before = r.running_slot_bytes()
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(timeout=60)

    def open_fds():
        return len(os.listdir(f"/proc/{dev._proc.pid}/fd"))

    try:
        wait_for(lambda: "app: error (2)" in dev.console, timeout=30, what="two retries")
        fds = open_fds()
        wait_for(lambda: "app: error (4)" in dev.console, timeout=30, what="four retries")
        assert open_fds() == fds  # a failed attempt leaves no socket behind (a board has few)
        assert dev.running
    finally:
        result = dev.stop()
    assert "Traceback" not in dev.console
    assert result.boot_count == 1
    assert r.running_slot_bytes() == before


def run_until(r, job, status, timeout=90, seen=None):
    """Run the device in the background until the job reaches status (and, with `seen`, until
    seen(console) is true: what the board prints after the job ended); -> (result, console)."""
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None, chip=r.chip)
    dev.start(timeout=timeout + 30)
    try:
        wait_for(lambda: r.execution(job).status == status and (seen is None or seen(dev.console)),
                 timeout=timeout, what=status if seen is None else f"{status} and what follows", dev=dev)
    finally:
        result = dev.stop()
    return result, dev.console


def test_new_firmware_that_hangs_is_reset_by_the_watchdog_and_rolled_back(rig):
    r = main_rig(rig, watchdog_s=3, telemetry_s=1)
    hang = firmware("1.0.1", payload={"checks.py": "def run(jobs):\n    while True:\n        pass\n"})
    job = r.publish(hang)
    result, console = run_until(r, job, "FAILED")
    assert any(b.end == "wdt" for b in result.boots), console
    assert r.execution(job).status_details["reason"] == "rolled back: firmware 1.0.1 did not confirm"
    assert r.version() == "1.0.0"


def test_new_firmware_that_cannot_reach_the_cloud_rolls_back(rig):
    r = main_rig(rig, telemetry_s=1, trial_s=5)
    # The new firmware's connection code is broken: it never gets through (EHOSTUNREACH).
    broken = firmware("1.0.1", payload=frozen_library(awsiot=(
        "import json\n"
        "def load_config(path='config.json'):\n"
        "    with open(path) as f:\n"
        "        return json.load(f)\n"
        "class Connection:\n"
        "    def __init__(self, cfg, keepalive=60, feed=None):\n"
        "        self.thing = cfg['thing']\n"
        "    def connect(self):\n"
        "        raise OSError(113)\n"
        "    def connected(self):\n"
        "        return False\n"
        "    def close(self):\n"
        "        pass\n")), size=None)
    job = r.publish(broken)
    run_until(r, job, "FAILED", timeout=120)
    reason = r.execution(job).status_details["reason"]
    assert reason.startswith("rolled back: no connection to AWS IoT on the trial boot"), reason
    assert r.version() == "1.0.0"


def test_device_comes_back_after_the_cloud_restarts(tmp_path):
    # The broker goes away under a running device and comes back (same endpoint): the device
    # retries, reconnects, and carries out the job published afterwards.
    from fotatools.cloud import daemon
    from fotatools.cloud.client import LocalBackend
    from tests.device.rig import Rig

    home = tmp_path / "home"
    daemon.start(home, owned=True)
    try:
        r = Rig(LocalBackend(home), home, tmp_path, app=(ROOT / "main.py").read_text())
        cfg = json.loads((r.fs / "config.json").read_text())
        cfg["telemetry_s"] = 1
        (r.fs / "config.json").write_text(json.dumps(cfg))
        dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
        dev.start(timeout=150)
        try:
            wait_for(lambda: "app: firmware 1.0.0" in dev.console, what="start", dev=dev)
            time.sleep(1.0)
            daemon.stop(home)
            wait_for(lambda: "app: error (2)" in dev.console, timeout=30, what="retries", dev=dev)
            daemon.start(home, owned=True)
            r.cloud = LocalBackend(home)
            job = r.publish(firmware("1.0.1"))
            wait_for(lambda: r.execution(job).status == "SUCCEEDED", timeout=90, what="SUCCEEDED", dev=dev)
        finally:
            dev.stop()
        assert "Traceback" not in dev.console
    finally:
        daemon.stop(home)
