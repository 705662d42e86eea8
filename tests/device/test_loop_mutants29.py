"""lib/fota/loop.py, trial: the first self-test that fails rejects the trial boot; a later check
is not run and cannot make it pass."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

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
