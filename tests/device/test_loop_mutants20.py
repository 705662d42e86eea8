"""lib/fota/loop.py, run: the first line it prints says whether this boot is the trial of a new
firmware or application; and a session that connected starts the retry pause again from 1 s
(never 0 s: a broker that drops every session would be asked again at once, for ever)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, loop


@pytest.mark.parametrize("on_trial,want", cases([
    ("trial-boot", True, ["app: firmware", "1.0.0", "application", "none", "thing", "t", "trial"]),
    ("confirmed-boot", False, ["app: firmware", "1.0.0", "application", "none", "thing", "t", ""])]))
def test_the_first_line_names_a_trial_boot(on_trial, want):
    got = loop(f"""
core.on_trial = {on_trial}
core.reject = lambda why: None
loop.selftest.run = lambda jobs: (True, "")
lines = []
loop.print = lambda *a: lines.append(list(a))
run()
out(lines[0])
""")
    assert got == want


def test_the_retry_pause_starts_again_at_one_second_after_a_session():
    # connect() fails twice (pauses of 1 s, then 2 s), then connects; the session's first
    # telemetry message fails: the pause is 1 s again, not 4 s; the next connect ends the run
    got = loop("""
tries = []
def connect(self):
    tries.append(lt.t)
    if len(tries) in (1, 2):
        raise OSError(113)
    if len(tries) == 4:
        raise KeyboardInterrupt
    self.up = True
def publish(self, topic, msg):
    raise OSError(104)
Conn.connect = connect
Conn.publish = publish
run()
out([(b - a) // 1000 for a, b in zip(tries, tries[1:])])
""")
    assert got == [1, 2, 1]
