"""A temperature sensor the demo board does not have: a slow sine around 21 C with a little
noise, from the board's clock."""

import math
import time

LOW, HIGH = -40.0, 85.0  # the range of the usual I2C temperature sensors
_seed = 12345


def _noise():
    global _seed
    _seed = (_seed * 1103515245 + 12345) & 0x7FFFFFFF
    return (_seed % 1000) / 1000.0 - 0.5


def read():
    t = time.ticks_ms() / 60000.0
    return 21.0 + 2.5 * math.sin(t) + 0.2 * _noise()


def plausible(value):
    return LOW <= value <= HIGH
