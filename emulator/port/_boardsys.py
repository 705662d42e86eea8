"""sys of the emulated board: the unix port's sys, with what a board reports instead.

The built-in sys cannot be changed (its attributes are in ROM); the launcher puts this module
in sys.modules["sys"], which `import sys` consults first. Everything but platform and
implementation is the built-in's own object (path, modules, argv, stdout, exit, ...).
Values as py/modsys.c builds them for the ESP32 port: MICROPY_PY_SYS_PLATFORM "esp32"
(ports/esp32/mpconfigport.h); _machine = MICROPY_HW_BOARD_NAME " with " MICROPY_HW_MCU_NAME
(boards/ESP32_GENERIC/mpconfigboard.h); _mpy = MPY_FILE_HEADER_INT for xtensawin
(py/persistentcode.h: version 6, sub-version 3, arch 10); _build = board-variant
(py/mkrules.cmake); _thread "GIL" (MICROPY_PY_THREAD_GIL). sys.version is the interpreter's
own: the same MicroPython runs here.
"""

import sys as _sys

import _esp32emu as _emu
from sys import *  # noqa: F401,F403 - the built-in sys, re-exported as it is

# not in the built-in's dict (attribute delegation), so not brought by the import above:
# the same list object, so that sys.path.append() and sys.path[:] = ... work (a new list
# assigned to sys.path would not reach the importer)
path = _sys.path
ps1 = _sys.ps1
ps2 = _sys.ps2

platform = "esp32"

_MPY = 6 | (3 | 10 << 2) << 8


class _Implementation:
    """An attrtuple like sys.implementation: fields by name and by index."""

    _fields = ("name", "version", "_machine", "_mpy", "_build", "_thread")

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

    def __eq__(self, other):
        return tuple(self._values) == tuple(other)

    def __repr__(self):
        return "(" + ", ".join("%s=%r" % kv for kv in zip(self._fields, self._values)) + ")"


# the board is this project's FOTA_<chip> build when its table has the "romfs" partition
# (firmware/FOTA_ESP32*/mpconfigboard.h), MicroPython's generic board of the chip otherwise
# (ESP32_GENERIC-OTA, ESP32_GENERIC_S3, ESP32_GENERIC_C3); the chip's facts are in chips.py
_chip = _emu.CHIP
if _chip.key != "esp32":  # rv32imc (11) on the ESP32-C3, xtensawin (10) on the ESP32-S3
    _MPY = 6 | (3 | _chip.mpy_arch << 2) << 8
_fota = _emu.romfs_part is not None
_board = (_chip.machine(_fota), _chip.fota_build if _fota else _chip.build)
implementation = _Implementation("micropython", _sys.implementation.version, _board[0], _MPY,
                                 _board[1], "GIL")
