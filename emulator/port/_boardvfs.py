"""vfs of the emulated board: the unix port's built-in vfs plus, on a board whose firmware is
built with ROMFS (MICROPY_VFS_ROM, this project's FOTA_ESP32), vfs.rom_ioctl as
ports/esp32/esp32_partition.c has it (mp_vfs_rom_ioctl):

- rom_ioctl(1) (number of segments): 1 if the partition table has a data partition labelled
  "romfs", else 0;
- rom_ioctl(2, id) (get segment): that partition as an esp32.Partition with the buffer
  protocol, whatever the id (the C code does not look at it), or -22 (-EINVAL) without one;
- every other command (3 write prepare, 4 write, 5 write complete, 6 min prepare): -22. The
  ESP32 writes ROMFS through the Partition object (ioctl(6, block) erases a block,
  writeblocks(block, buf, offset) programs), as `mpremote romfs deploy` does on this port.

The emulated firmware has ROMFS when the flash's partition table has a "romfs" partition;
otherwise (MicroPython's ESP32_GENERIC-OTA table) vfs has no rom_ioctl, as a stock ESP32
build (MICROPY_VFS_ROM is 0 in ports/esp32/mpconfigport.h). The launcher puts this module in
sys.modules["vfs"] (the built-in module cannot be extended), which `import vfs` consults
first.
"""

from vfs import *  # noqa: F401,F403 - the built-in vfs, re-exported as it is

import _esp32emu as _emu

if _emu.romfs_part is not None:
    import esp32 as _esp32

    _seg = _esp32._RomSegment._map()

    def rom_ioctl(*args):
        if not 1 <= len(args) <= 4:
            raise TypeError("function expected at most 4 arguments, got %d" % len(args))
        cmd = args[0]
        if not isinstance(cmd, int):
            raise TypeError("can't convert %s to int" % type(cmd).__name__)
        if cmd == 1:
            return 1
        if cmd == 2:
            return _seg
        return -22
