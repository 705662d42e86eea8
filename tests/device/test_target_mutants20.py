"""lib/fota/target.py, SmpTarget: a target that was never given a file has nothing to abort and
asks nothing of its MCU; and its waits (the pause after a reset request) last what they say at
any uptime: `time.ticks_add(ticks, delta)` takes the ticks first, and MicroPython refuses a
delta of half the ticks period or more (extmod/modtime.c: "ticks interval overflow"), which an
uptime reaches on an ESP32 after 2**29 ms, about 6 days."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import TARGET, cases, mp


def test_a_target_never_given_a_file_aborts_without_asking_the_mcu():
    got = mp(TARGET + """
calls = []
class Asked(Smp):
    def erase(self):
        calls.append("erase")
t = smp_target(Asked())
out([error(t.abort), calls])
""")
    assert got == ["ok", []]


RUN = TARGET + """
import time as real
class Ticks:
    # the board's tick counter, with MicroPython's own ticks_add and ticks_diff
    def __init__(self, t):
        self.t = t
    def ticks_ms(self):
        return self.t
    def ticks_add(self, a, b):
        return real.ticks_add(a, b)
    def ticks_diff(self, a, b):
        return real.ticks_diff(a, b)
    def sleep_ms(self, ms):
        self.t = real.ticks_add(self.t, ms)
ticks = Ticks(START)
target.time = ticks
t = smp_target(Smp())
out([error(t._pause, 1000), real.ticks_diff(ticks.t, START)])
"""


@pytest.mark.parametrize("start", cases([
    ("just-booted", "0"),
    ("past-half-the-ticks-period", "2 ** 61 + 5"),  # the unix port's period is 2**62
    ("across-the-wrap", "2 ** 62 - 10")]))
def test_a_pause_lasts_its_time_at_any_uptime(start):
    assert mp(RUN.replace("START", start)) == ["ok", 1000]
