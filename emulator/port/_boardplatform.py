"""platform of the emulated board, as extmod/modplatform.c answers on the ESP32 port.

platform() is "MicroPython-" MICROPY_VERSION_STRING "-" MICROPY_PLATFORM_ARCH "-"
MICROPY_PLATFORM_VERSION "-with-" libc (extmod/modplatform.h): the architecture "xtensa" on
the ESP32 and ESP32-S3, "riscv" on the ESP32-C3 (chips.py), the version "IDF" and the running
image's ESP-IDF version (its app descriptor's idf_ver), the libc newlib; python_compiler() and
libc_ver() likewise.
"""

import sys as _sys

_emu = _sys.modules["_esp32emu"]
_ff = _sys.modules["flashfmt"]

_part = _emu.running_partition()
_desc = _ff.parse_app_desc(_emu.flash.read(_part.offset + _ff.APP_DESC_OFFSET, _ff.APP_DESC_SIZE))
_IDF = "IDF" + (_desc["idf_ver"] if _desc else "")
_v = _sys.implementation.version
_RELEASE = "%d.%d.%d" % _v[:3] + ("-" + _v[3] if len(_v) > 3 and _v[3] else "")
_LIBC = ("newlib", "4.3.0")


def platform():
    return "MicroPython-%s-%s-%s-with-%s%s" % (_RELEASE, _emu.CHIP.arch, _IDF, _LIBC[0], _LIBC[1])


def python_compiler():
    return ""


def libc_ver():
    return _LIBC
