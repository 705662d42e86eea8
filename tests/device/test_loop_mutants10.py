"""lib/fota/loop.py: an application module whose `step` or `selftest` is not a function (a module
it imported under that name) has no such hook: its trial boot is not rolled back for it, and a
function of that name is called."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import loop, core
core.testing = lambda: True  # its trial boot: an error of the application rolls it back
calls = []
core.reject = lambda why: calls.append(["rolled back", why])
class App:
    pass
App.step = HOOK
App.selftest = HOOK
loop.selftest.run = lambda jobs: (True, "")
loop.step(App, "conn")
checks = [c for c in (None, loop._hook(App, "selftest")) if c]  # as loop.run makes them
loop.trial(None, checks)
out(calls)
"""


@pytest.mark.parametrize("hook,want", cases([
    ("a-module", "json", []),
    ("a-function", "lambda *a: calls.append(a) or (True, '')", [["conn"], [None]])]))
def test_only_a_function_is_a_hook(hook, want):
    assert mp(RUN.replace("HOOK", hook)) == want
