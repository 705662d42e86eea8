#define MICROPY_HW_BOARD_NAME "ESP32-S3 with AWS IoT FOTA"
#define MICROPY_HW_MCU_NAME "ESP32-S3"

// The REPL on UART0 as well as on native USB, as MicroPython's ESP32_GENERIC_S3 has it
// (boards/ESP32_GENERIC_S3/mpconfigboard.h): boards with a USB-UART bridge use UART0.
#define MICROPY_HW_ENABLE_UART_REPL (1)

// ROMFS (vfs.VfsRom, vfs.rom_ioctl; MICROPY_VFS_ROM_IOCTL follows it in py/mpconfig.h): the
// application's .mpy files run in place from the "romfs" partition (partitions.csv).
#define MICROPY_VFS_ROM (1)
