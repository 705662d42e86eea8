"""esp module of the emulated board (ports/esp32/modesp.c) over the emulated flash.

flash_read/flash_write/flash_erase address the whole chip as esp_flash_read/_write/
_erase_region do: a write ANDs into what is there (NOR rules; OSError(EIO) in strict mode),
a write or erase that touches the running app, the bootloader or the partition table aborts
and reboots (ESP-IDF's dangerous-write check), and a range beyond the chip raises
OSError(EIO), as every ESP-IDF error does here. Every call is a counted flash operation that
a power cut can hit.
"""

import _esp32emu as _emu

LOG_NONE = 0
LOG_ERROR = 1
LOG_WARNING = 2
LOG_INFO = 3
LOG_DEBUG = 4
LOG_VERBOSE = 5

_EIO = 5
_log_level = [LOG_ERROR]


def osdebug(uart, level=LOG_VERBOSE):
    """ESP-IDF log level: None sets it back to errors only (the emulator prints no IDF logs)."""
    _log_level[0] = LOG_ERROR if uart is None else level


def flash_size():
    return _emu.flash.size


def flash_user_start():
    return 0x200000


def _in_chip(addr, size):
    if addr < 0 or size < 0 or addr + size > _emu.flash.size:
        raise OSError(_EIO)


def flash_read(addr, buf):
    buf = memoryview(buf)
    _in_chip(addr, len(buf))
    _emu.flash.readinto(addr, buf)


def flash_write(addr, buf):
    buf = memoryview(buf)
    _in_chip(addr, len(buf))
    _emu.flash_write(addr, buf)


def flash_erase(sector):
    _in_chip(sector * 4096, 4096)
    _emu.flash_erase(sector * 4096, 4096)


def gpio_matrix_in(pin, sig, inv):
    pass


def gpio_matrix_out(pin, sig, out_inv, oen_inv):
    pass
