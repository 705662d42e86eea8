"""time of the emulated board: the unix port's time, with the ESP32 port's ticks.

extmod/modtime.c masks every ticks value with MICROPY_PY_TIME_TICKS_PERIOD - 1, and ticks_diff
and ticks_add work modulo that period; py/mpconfig.h makes it MP_SMALL_INT_POSITIVE_MASK + 1:
2**30 on the ESP32's 32-bit build (31-bit small ints), 2**62 in this 64-bit unix port. So here,
as on a board, ticks_ms wraps after 12.4 days of uptime and ticks_us after 17.9 minutes, and
ticks_add(t, delta) raises OverflowError("ticks interval overflow") for a delta outside
(-2**29, 2**29). On a board ticks_ms and ticks_us count from the reset (esp_timer_get_time(),
ports/esp32/mphalport.c); ESP32_TICKS_MS is what ticks_ms says as this boot starts (0 after a
reset; a test may boot a board that has been up for days, or whose ticks are about to wrap).
ticks_cpu is the CPU's cycle counter on a board (esp_cpu_get_cycle_count()); here the host's,
masked the same way.

The built-in module cannot be changed; the launcher puts this one in sys.modules["time"].
"""

import os as _os
import time as _t
from time import *  # noqa: F401,F403 - the built-in time, re-exported as it is

PERIOD = 1 << 30
_MASK = PERIOD - 1
_HALF = PERIOD >> 1
_AT = int(_os.getenv("ESP32_TICKS_MS") or 0)
_ms0 = _t.ticks_ms() - _AT  # the host's ticks when the board's were 0
_us0 = _t.ticks_us() - _AT * 1000


def ticks_ms():
    return (_t.ticks_ms() - _ms0) & _MASK


def ticks_us():
    return (_t.ticks_us() - _us0) & _MASK


def ticks_cpu():
    return _t.ticks_cpu() & _MASK


def ticks_diff(end, start):
    return ((end - start + _HALF) & _MASK) - _HALF


def ticks_add(ticks, delta):
    if type(delta) is float:  # mp_obj_get_int
        raise TypeError("can't convert float to int")
    if not -_HALF < delta < _HALF:
        raise OverflowError("ticks interval overflow")
    return (ticks + delta) & _MASK
