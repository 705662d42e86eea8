"""lib/fota/core.py, end: a report the jobs service refuses because the job has already ended
(TerminalStateReached, InvalidStateTransition, ResourceNotFound) is taken as done and the console
says so; any other failure is raised as it came, so that the record is kept and the outcome
reported next time."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import core
logs = []
core.log = lambda step, msg: logs.append([step, msg])
class Refused(Exception):
    pass
class Job:
    id = "j-1"
    def update(self, status, details):
        e = Refused("refused")
        if CODE is not None:
            e.code = CODE
        raise e
out([error(core.end, Job(), "SUCCEEDED", "confirm", {}), logs[1:]])
"""


@pytest.mark.parametrize("code,want", cases([
    ("terminal", "TerminalStateReached", ["ok", [["confirm", "job j-1 already ended (TerminalStateReached)"]]]),
    ("invalid", "InvalidStateTransition", ["ok", [["confirm", "job j-1 already ended (InvalidStateTransition)"]]]),
    ("gone", "ResourceNotFound", ["ok", [["confirm", "job j-1 already ended (ResourceNotFound)"]]]),
    ("other-code", "Throttled", ["Refused: refused", []]),
    ("no-code", None, ["Refused: refused", []])]))
def test_a_report_on_an_ended_job_is_done_and_any_other_failure_raised(code, want):
    assert mp(RUN.replace("CODE", repr(code))) == want
