"""lib/fota/clock.py, attempt and tls_ok: once two sources agree, or a TLS handshake confirms the
time of one on trial, the sources are asked again RESYNC_MS (6 h) later, also on a board up for
more than 2**29 ms (6.2 days). An ESP32's ticks run modulo 2**30, and
time.ticks_add(ticks, delta) refuses a delta of half that period or more with OverflowError
"ticks interval overflow" (MicroPython's extmod/modtime.c, time_ticks_add; the period is
MICROPY_PY_TIME_TICKS_PERIOD, 2**30 where a small int has 31 bits): the time to wait is the
delta, the ticks of now the first argument. The fake time below does what the board's does."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, clock

ESP32 = """
class Esp32(T):
    # ticks as an ESP32 counts them (period 2**30)
    def ticks_ms(self):
        return self.t & (2**30 - 1)
    def ticks_add(self, ticks, delta):
        if not -2**29 < delta < 2**29:
            raise OverflowError("ticks interval overflow")
        return (ticks + delta) & (2**30 - 1)
    def ticks_diff(self, a, b):
        return ((a - b + 2**29) & (2**30 - 1)) - 2**29
ct = Esp32()
"""

RUN = ESP32 + """
clock.time = ct
n = [0]
def agree(host, port):
    n[0] += 1
    return (FL, 0, (host, 123))
clock.sntp = agree
ct.t = UP
asked = []
for later in (0, 1000, clock.RESYNC_MS - 1, clock.RESYNC_MS):
    ct.t = UP + later
    clock.ready(["a", "b"])
    asked.append(n[0])
out([clock.synced, asked])
"""


UPS = cases([
    ("up-a-day", 86400_000),
    ("up-just-under-2**29-ms", 2**29 - 1),
    ("up-2**29-ms", 2**29),
    ("up-7-days", 7 * 86400_000),
    ("ticks-wrap-before-the-resync", 2**30 - 1000)])


@pytest.mark.parametrize("up", UPS)
def test_the_sources_are_asked_again_6_hours_after_they_agreed_however_long_the_board_is_up(up):
    assert clock(RUN.replace("UP", str(up))) == [2, [2, 2, 2, 4]]


TRIAL = ESP32 + """
clock.time = ct
n = [0]
def alone(host, port):
    n[0] += 1
    return (FL, 0, (host, 123))
clock.sntp = alone
ct.t = UP
clock.ready(["a"])  # one source: its time goes on trial
on = clock._on
ok = error(clock.tls_ok)  # the handshake that follows gets through
synced = clock.synced
asked = []
for later in (1000, clock.RESYNC_MS - 1, clock.RESYNC_MS):
    ct.t = UP + later
    clock.ready(["a"])
    asked.append(n[0])
out([on, ok, synced, asked])
"""


@pytest.mark.parametrize("up", UPS)
def test_a_time_tls_confirmed_is_asked_again_6_hours_later_however_long_the_board_is_up(up):
    assert clock(TRIAL.replace("UP", str(up))) == ["a", "ok", 1, [1, 1, 2]]
