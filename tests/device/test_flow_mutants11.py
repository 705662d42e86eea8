"""lib/fota/flow.py, _run: before it starts a job the console says which job, what runs now (the
firmware's version, or the application's), the version it goes to ("?" when the document has
none) and the slot it goes into."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_flow_mutants6 import FAKES

RUN = FAKES.replace("UPDATE", 'raise OSError("refused")') + """
Plan.version = VERSION
flow.version = lambda: "1.1"  # the firmware's; the application runs 1.0
out([flow._run(Jobs(), Job(), False), logs[0]])
"""


@pytest.mark.parametrize("kind,new,want", cases([
    ("firmware", "fota", "2.0", "job j-1: 1.1 -> 2.0 into slot 1"),
    ("application", "app", "2.0", "job j-1: application 1.0 -> 2.0 into slot 1"),
    ("no-version", "fota", None, "job j-1: 1.1 -> ? into slot 1")]))
def test_the_console_says_what_a_job_updates_before_it_starts(kind, new, want):
    got = mp(RUN.replace("KIND", repr(kind)).replace("VERSION", repr(new)))
    assert got == [False, ["start", want]]
