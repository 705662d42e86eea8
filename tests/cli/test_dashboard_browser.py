"""`fota dashboard` in a real browser (headless Chromium), as a person watching a rollout sees it.

Three emulated ESP32 boards (tests/device/rig.py: MicroPython on the emulated flash) in a group
take a firmware rollout at one board a minute from the local stand-in, which runs in a thread
of this test on a Jobs clock the test moves: the rollout releases the next board only when the
test lets a minute pass, so what the page must show at each step is fixed. The page is asked
again until it shows it (never a fixed sleep). Screenshots are kept in build/dashboard.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fotatools import cli
from fotatools.cloud import daemon
from fotatools.cloud.client import LocalBackend
from fotatools.dashboard import Dashboard
from tests.cli.browser import chromium, look, screenshot, wait_for
from tests.cli.images import app_image
from tests.cli.standin import StandIn
from emulator.device import Device
from tests.device.rig import ROOT, Rig, firmware

MINUTE = 60.0


class Clock:
    """The Jobs API's time: it stands still until the test moves it a minute on."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cloud(tmp_path):
    """The stand-in (broker, jobs, object store, SNTP) in a thread, on the test's clock."""
    home = tmp_path / "home"
    clock = Clock()
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(home,), name="stand-in", kwargs={
        "minute": MINUTE, "stop_event": stop, "hosts": [], "clock": clock})
    thread.start()
    state = daemon.Paths(home).state
    deadline = time.monotonic() + 60
    while not state.exists():
        assert thread.is_alive(), "the stand-in stopped at its start"
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.05)
    try:
        yield LocalBackend(home), home, clock
    finally:
        stop.set()
        thread.join(60)


def require_signatures(rig: Rig) -> None:
    """The board's device folder as `fota provision --signer` writes it: it takes only images
    signed with this key (and refuses this rollout's unsigned one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    (rig.fs / "certs" / "signer.der").write_bytes(der)
    config = json.loads((rig.fs / "config.json").read_text())
    config["signer"] = "certs/signer.der"
    (rig.fs / "config.json").write_text(json.dumps(config))


# -- what the page shows -----------------------------------------------------------------------
JOB = 'section.job[data-job="roll"]'


def legend(driver: Any) -> dict[str, int]:
    """The rollout chart's legend: "succeeded 1", "in progress 0", ... as numbers."""
    out = {}
    for span in driver.find_elements("css selector", f"{JOB} .legend > span[data-series]"):
        words, _, n = span.text.rpartition(" ")
        out[words] = int(n)
    return out


def summary(driver: Any) -> str:
    return driver.find_element("css selector", f"{JOB} .summary").text


def target_row(driver: Any, thing: str) -> list[str]:
    """A thing's row under the job: thing, state, step, reason, details."""
    row = driver.find_element("css selector", f'{JOB} tr[data-thing="{thing}"]')
    return [td.text for td in row.find_elements("tag name", "td")]


def area(driver: Any, series: str) -> float:
    """The height the chart gives a series (0 if it never had a thing)."""
    found = driver.find_elements("css selector", f'{JOB} svg polygon[data-series="{series}"]')
    return found[0].rect["height"] if found else 0.0


def axis(driver: Any) -> float:
    """The height of the chart's axis of things (0 to all the job's targets)."""
    return driver.find_element("css selector", f"{JOB} svg line.things").rect["height"]


def counts(**n: int) -> dict[str, int]:
    return {"succeeded": 0, "in progress": 0, "failed": 0, "waiting": 0, **n}


def versions(driver: Any) -> dict[str, int]:
    """The firmware table: version -> things."""
    out = {}
    for row in driver.find_elements("css selector", "#firmware tr[data-version]"):
        version, n = [td.text for td in row.find_elements("tag name", "td")]
        out[version] = int(n)
    return out


def board(rig: Rig) -> Device:
    """The board switched on, running the project's own main.py (fota.run: the device loop),
    which takes a job as soon as its notification arrives."""
    config = json.loads((rig.fs / "config.json").read_text())
    config["telemetry_s"] = 30
    (rig.fs / "config.json").write_text(json.dumps(config))
    return Device(rig.flash, rig.fs, heapsize="256k", echo=None).start(timeout=600)


def test_a_rollout_moves_from_waiting_to_succeeded_and_a_failure_shows_its_reason(cloud, tmp_path):
    backend, home, clock = cloud
    main = (ROOT / "main.py").read_text()
    rigs = [Rig(backend, home, tmp_path / f"board{n}", app=main) for n in range(3)]
    # the stand-in rolls a group out in the order its things joined: the last one here takes
    # only signed images, and refuses this rollout's unsigned one
    backend.create_thing_group("kitchens", [r.thing for r in rigs])
    require_signatures(rigs[2])
    fw = tmp_path / "fw.bin"
    fw.write_bytes(firmware("1.0.1"))
    devices: list[Device] = []
    with Dashboard(backend, port=0, interval=0.25) as dash, chromium(1100, 1000) as driver:
        try:
            driver.get(dash.url)
            devices += [board(r) for r in rigs]
            # each board reports at boot what it runs
            wait_for(driver, lambda d: versions(d) == {"1.0.0": 3}, "three boards on 1.0.0")
            screenshot(driver, "01-fleet")
            assert cli.main(["--home", str(home), "publish", str(fw), "--group", "kitchens",
                             "--rate", "1/min", "--job-id", "roll"]) == 0
            for done, rig in enumerate(rigs[:2], 1):
                # the rate let one more board have the job: it takes it, the others wait
                wait_for(driver, lambda d: legend(d) == counts(succeeded=done, waiting=3 - done),
                         f"{done} succeeded, {3 - done} waiting")
                assert look(driver, summary) == (f"{done}/3 succeeded, {3 - done} waiting "
                                                 "(not yet queued at 1/min)")
                assert look(driver, lambda d: target_row(d, rig.thing))[:3] == \
                    [rig.thing, "SUCCEEDED", "confirm"]
                wait_for(driver, lambda d: versions(d) == {"1.0.1": done, "1.0.0": 3 - done},
                         f"{done} on 1.0.1")
                screenshot(driver, f"0{done + 1}-board-{done}-succeeded")
                clock.now += MINUTE  # a minute of the rate: the next board is queued

            last = rigs[2].thing
            wait_for(driver, lambda d: legend(d) == counts(succeeded=2, failed=1), "the failure")
            assert look(driver, lambda d: target_row(d, last)) == [
                last, "FAILED", "check", "unsigned image refused: this device requires bc_sig", ""]
            assert look(driver, summary) == "2/3 succeeded, 1 failed"
            # a poll reads the job just before its executions: one page may show the last
            # execution ended and the job still IN_PROGRESS; the next poll shows it COMPLETED
            wait_for(driver, lambda d: d.find_element(
                "css selector", f"{JOB} h3 .state").text == "COMPLETED", "the job COMPLETED")
            # the board's own line: still on 1.0.0, its last job failed, and why
            cells = look(driver, lambda d: [td.text for td in d.find_elements(
                "css selector", f'#things tr[data-thing="{last}"] td')])
            assert cells[1] == "1.0.0" and cells[4:8] == [
                "roll", "FAILED", "check", "unsigned image refused: this device requires bc_sig"]
            assert look(driver, versions) == {"1.0.1": 2, "1.0.0": 1}
            # the chart: the successes at the bottom, two thirds of its height at the end
            heights = look(driver, lambda d: (area(d, "succeeded"), axis(d)))
            assert heights[0] == pytest.approx(2 / 3 * heights[1], rel=0.03)
            screenshot(driver, "04-done")
        finally:
            for dev in devices:
                dev.stop()
    assert [r.version() for r in rigs] == ["1.0.1", "1.0.1", "1.0.0"]


def test_what_devices_report_is_shown_as_text(tmp_path, capsys):
    """Reasons, versions, file versions are the devices' text: markup in them shows as
    markup, and runs nothing."""
    cloud = StandIn(tmp_path / "home")
    try:
        cloud.group("kitchens", cloud.things("kitchen-1", "kitchen-2"))
        fw = tmp_path / "fw.bin"
        fw.write_bytes(app_image("1.2.0"))
        assert cloud.fota(capsys, "publish", fw, "--group", "kitchens", "--job-id", "roll")[0] == 0
        reason = '<script>document.title="pwned"</script><img src=x onerror="document.title=1">'
        version = "<b>2.0</b>"
        for thing, status, details in (
                ("kitchen-1", "FAILED", {"step": "verify", "reason": reason}),
                ("kitchen-2", "SUCCEEDED", {"step": "confirm", "version": version})):
            cloud.engine.handle(f"$aws/things/{thing}/jobs/roll/update", json.dumps(
                {"status": status, "statusDetails": details}).encode())
        cloud.api.shadows.handle("$aws/things/kitchen-2/shadow/update", json.dumps(
            {"state": {"reported": {"firmware": version, "app": "<i>none</i>",
                                    "files": {"file_1": "<u>3</u>"}}}}).encode())
        with Dashboard(LocalBackend(cloud.home), port=0, interval=0.25) as dash, \
                chromium() as driver:
            driver.get(dash.url)
            wait_for(driver, lambda d: target_row(d, "kitchen-1")[3] == reason, "the reason")
            assert look(driver, lambda d: target_row(d, "kitchen-2")[4]) == f"version={version}"
            assert look(driver, lambda d: [td.text for td in d.find_elements(
                "css selector", '#things tr[data-thing="kitchen-2"] td')][1:4]) == \
                [version, "<i>none</i>", "file_1=<u>3</u>"]
            assert look(driver, lambda d: d.find_element(
                "css selector", '#firmware tr[data-version="<b>2.0</b>"]').text) == "<b>2.0</b> 1"
            assert driver.title == "fota fleet"
            assert len(driver.find_elements("tag name", "script")) == 1  # the page's own
            assert not driver.find_elements("css selector", "img, b, i, u")
            screenshot(driver, "markup-as-text")
    finally:
        cloud.close()
