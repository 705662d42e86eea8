#define MICROPY_HW_BOARD_NAME "ESP32 with AWS IoT FOTA"
#define MICROPY_HW_MCU_NAME "ESP32"

// ROMFS (vfs.VfsRom, vfs.rom_ioctl; MICROPY_VFS_ROM_IOCTL follows it in py/mpconfig.h): the
// application's .mpy files run in place from the "romfs" partition (partitions.csv).
#define MICROPY_VFS_ROM (1)
