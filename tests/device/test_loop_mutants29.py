"""lib/fota/loop.py, trial: the first self-test that fails rejects the trial boot; a later check
is not run and cannot make it pass. run: a job notification ends the wait between two turns at
once."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, loop, mp

RUN = """
from fota import loop, core
calls = []
core.reject = lambda why: calls.append(["rejected", why])
loop.print = lambda *a: None
loop.selftest.run = lambda jobs: LIB
def first(jobs):
    calls.append("first")
    return FIRST
def second(jobs):
    calls.append("second")
    return (True, "")
loop.trial(None, [first, second])
out(calls)
"""


@pytest.mark.parametrize("lib,first,want", cases([
    ("library-fails", (False, "no clock"), (True, ""), [["rejected", "self-test failed: no clock"]]),
    ("first-check-fails", (True, ""), (False, "no sensor"),
     ["first", ["rejected", "self-test failed: no sensor"]]),
    ("all-pass", (True, ""), (True, ""), ["first", "second"])]))
def test_the_first_failing_check_ends_the_trial(lib, first, want):
    assert mp(RUN.replace("LIB", repr(lib)).replace("FIRST", repr(first))) == want


def test_a_job_notification_ends_the_wait_between_turns_at_once():
    # the third second of the wait between two telemetry messages brings a job notification:
    # the next turn (the update flow) starts then, not at the end of the wait
    got = loop("""
def wait(self, ms):
    lt.t += ms
    events.append(["wait", ms])
    return len([e for e in events if e[0] == "wait"]) == 3
Jobs.wait = wait
flow.handle_fota_jobs = lambda *a, **k: events.append(["flow", lt.t])
Conn.publishes = 1
run()
out([e[0] for e in events if e[0] != "connect" and e[0] != "wdt"])
""")
    # on connecting: the jobs, then the first turn (jobs, shadow, telemetry); 3 s of wait
    assert got == ["flow", "flow", "shadow", "publish", "wait", "wait", "wait", "flow", "publish"]
