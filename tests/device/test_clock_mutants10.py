"""lib/fota/clock.py, put: the clock is set to the reply's time to the millisecond, moved on by
the milliseconds since the reply came: the RTC gets the whole seconds and the microseconds of
the part of a second (RTC.datetime's last field)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import clock
clock.time = clk
sets = []
clock.set_time = lambda t, us=0: sets.append([t, us])
clk.t = NOW
clock.put((1700000000, US, 0))
out(sets)
"""


@pytest.mark.parametrize("us,now,want", cases([
    ("999ms-at-once", 999000, 0, [1700000000, 999000]),
    ("999ms-and-a-bit-at-once", 999999, 0, [1700000000, 999000]),
    ("half-a-second-600ms-later", 500000, 600, [1700000001, 100000]),
    ("1ms-later", 0, 1, [1700000000, 1000])]))
def test_the_clock_gets_the_replys_time_to_the_millisecond(us, now, want):
    assert mp(RUN.replace("NOW", str(now)).replace("US", str(us))) == [want]
