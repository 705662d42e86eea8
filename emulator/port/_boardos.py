"""os of the emulated board: the unix port's os, with uname() as the ESP32 port has it.

The built-in os cannot be given attributes (its dict is in ROM); the launcher puts this module
in sys.modules["os"]. Everything but uname is the built-in's own object. os.uname() is
extmod/modos.c's (MICROPY_PY_OS_UNAME, on in ports/esp32/mpconfigport.h): sysname and nodename
MICROPY_PY_SYS_PLATFORM ("esp32" on every chip of the port), release MICROPY_VERSION_STRING,
version the git tag " on " the build date, machine MICROPY_HW_BOARD_NAME " with "
MICROPY_HW_MCU_NAME (as sys.implementation._machine).
"""

import sys as _sys

from os import *  # noqa: F401,F403 - the built-in os, re-exported as it is


class _Uname:
    _fields = ("sysname", "nodename", "release", "version", "machine")

    def __init__(self, *values):
        self._values = values
        for k, v in zip(self._fields, values):
            setattr(self, k, v)

    def __getitem__(self, i):
        return self._values[i]

    def __len__(self):
        return len(self._values)

    def __iter__(self):
        return iter(self._values)

    def __repr__(self):
        return "(" + ", ".join("%s=%r" % kv for kv in zip(self._fields, self._values)) + ")"


def _release():
    v = _sys.implementation.version
    return "%d.%d.%d" % v[:3] + ("-" + v[3] if len(v) > 3 and v[3] else "")


_MACHINE = _sys.modules["_boardsys"].implementation._machine
_VERSION = _sys.version.split("MicroPython ", 1)[-1]


def uname():
    return _Uname("esp32", "esp32", _release(), _VERSION, _MACHINE)
