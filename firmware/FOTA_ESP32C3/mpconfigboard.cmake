# An ESP32-C3 (4 MB flash) MicroPython build for over-the-air updates: two 1.5 MB app slots
# (MicroPython's partitions-4MiB-ota.csv) plus a 256 KB ROMFS partition for the application
# (partitions.csv, ROMFS on in mpconfigboard.h), bootloader rollback, the app version in the
# app descriptor, and this project's lib/ frozen in. The bootloader is at 0x0 (board.json
# flash_offset); images need chip revision v0.3 or later (sdkconfig.c3: CONFIG_ESP32C3_REV_MIN_3).
# The first four defaults are MicroPython's for the ESP32-C3
# (ports/esp32/boards/mpconfigboard_esp32c3_common.cmake, used by ESP32_GENERIC_C3).
# sdkconfig.version and sdkconfig.partitions are written by `make firmware BOARD=FOTA_ESP32C3`.
set(IDF_TARGET esp32c3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.riscv
    boards/sdkconfig.ble
    boards/sdkconfig.c3
    ${MICROPY_BOARD_DIR}/sdkconfig.board
    ${MICROPY_BOARD_DIR}/sdkconfig.fota
    ${MICROPY_BOARD_DIR}/sdkconfig.version
    ${MICROPY_BOARD_DIR}/sdkconfig.partitions
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
