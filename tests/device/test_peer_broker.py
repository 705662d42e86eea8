"""A broker that drops or repeats messages on their way to the board (tests/device/peers.py:
BrokerPeer, a TLS proxy in front of the stand-in's broker), and the board's answer: the board
runs its main.py loop, and its update job still ends SUCCEEDED with the new firmware running.
A lost answer costs the board one request's wait (10 s) and a reconnect; a lost notification
the next look at the job list ("jobs_s", 5 s here, where a notification is lost); a repeated
one nothing."""

from __future__ import annotations

import json
import re

import pytest

from tests.device.peers import BrokerPeer
from tests.device.rig import firmware
from tests.reliability.board import MAIN, Running

NEW = firmware("1.0.1", size=100_000)
JOBS = r"\$aws/things/[^/]+/jobs/"


def through(r, port: int, jobs_s: int) -> None:
    """The board's config: the broker at `port` (the proxy), quick telemetry, a look at the
    job list every jobs_s seconds."""
    path = r.fs / "config.json"
    c = json.loads(path.read_text())
    c.update(port=port, telemetry_s=1, jobs_s=jobs_s)
    path.write_text(json.dumps(c))


def update_through(r, cloud, tmp_path, rules, after_start=False, jobs_s=3600, make=lambda r: r.publish(NEW)):
    """One job, make(r), through a broker with these rules -> (rig, execution, console, what
    it saw). after_start: the job is made once the board is in its loop (its first look done)."""
    with BrokerPeer(cloud[1], r.thing, rules) as b:
        through(r, b.port, jobs_s)
        job = None if after_start else make(r)
        with Running(r, tmp_path / "ops.log") as board:
            if after_start:
                looked = lambda: any(t.endswith("/jobs/get/accepted") for t, _ in b.seen)  # noqa: E731
                assert board.until(looked, 120), board.dev.console[-3000:]
                job = make(r)
            done = board.until(lambda: r.execution(job).status in ("SUCCEEDED", "FAILED"), 180)
            console = board.dev.console
        seen = list(b.seen)
        errors = list(b.errors)
    assert done, (r.execution(job), errors, console[-4000:])
    return r, r.execution(job), console, seen


# fault -> (rules, job made once the board is in its loop, its jobs_s): the periodic look at
# the job list only where a notification is lost; elsewhere the board's answer to the fault
# must do without it
CASES = {
    "every job notification dropped": ([("drop", JOBS + "notify", 0)], True, 5),
    "the job list's answer dropped": ([("drop", JOBS + "get/accepted", 1)], False, 3600),
    "the job document dropped": ([("drop", JOBS + "job-[^/]+/get/accepted", 1)], False, 3600),
    "the start's answer dropped": ([("drop", JOBS + "job-[^/]+/update/accepted", 1)], False, 3600),
    "the testing report's answer dropped": ([("drop", JOBS + "job-[^/]+/update/accepted", 2)], False, 3600),
    "the SUCCEEDED report's answer dropped": ([("drop", JOBS + "job-[^/]+/update/accepted", 3)], False, 3600),
    "every message twice": ([("twice", ".", 0)], True, 3600),
}


@pytest.mark.parametrize("fault", list(CASES))
def test_the_job_ends_right_through_a_broker_that_drops_or_repeats(rig, cloud, tmp_path, fault):
    rules, after_start, jobs_s = CASES[fault]
    r, ex, console, seen = update_through(rig(app=MAIN), cloud, tmp_path, rules, after_start, jobs_s)
    assert ex.status == "SUCCEEDED", (ex, console[-4000:])
    assert r.version() == "1.0.1"
    assert "Traceback" not in console, console[-4000:]
    acted = [t for t, a in seen if a != "pass"]
    assert acted, seen  # the fault did happen
    for _, pattern, n in rules:
        if n:
            assert len([t for t, a in seen if a != "pass" and re.search(pattern, t)]) == 1, seen


def test_a_job_of_files_whose_start_gets_no_answer(rig, cloud, tmp_path):
    # The files step reports IN_PROGRESS first; its answer is lost: the board reconnects and
    # looks again, and the job goes on.
    from tests.device.test_file_targets import CONFIG, board, file_version, multi_job

    r = board(rig)
    (r.fs / "main.py").write_text(MAIN.replace("import fota\n", "import fota\nfrom fota import target\n"
                                               "fota.targets[2] = target.FileTarget('data/fpga.bit')\n"))
    rules = [("drop", JOBS + "AFR_OTA-[^/]+/update/accepted", 1)]
    r, ex, console, seen = update_through(r, cloud, tmp_path, rules, make=lambda r: multi_job(r, [(2, CONFIG, "fpga.bit")]))
    assert ex.status == "SUCCEEDED", (ex, console[-4000:])
    assert ex.status_details.get("file_2") == file_version(CONFIG), ex.status_details
    assert r.file("data/fpga.bit") == CONFIG
    assert [a for t, a in seen if a != "pass"] == ["drop"], seen
