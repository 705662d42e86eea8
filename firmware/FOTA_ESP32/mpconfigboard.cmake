# An ESP32 (4 MB flash) MicroPython build for over-the-air updates:
# two 1.5 MB app slots (MicroPython's OTA partition table) plus a 256 KB ROMFS partition for
# the application (partitions.csv, ROMFS on in mpconfigboard.h), bootloader rollback, the app
# version in the app descriptor, and this project's lib/ frozen in.
# sdkconfig.version and sdkconfig.partitions are written by `make firmware` (the partition
# CSV's absolute path: ESP-IDF takes it relative to ports/esp32, and this board lives outside).
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    boards/ESP32_GENERIC/sdkconfig.ota
    ${MICROPY_BOARD_DIR}/sdkconfig.fota
    ${MICROPY_BOARD_DIR}/sdkconfig.version
    ${MICROPY_BOARD_DIR}/sdkconfig.partitions
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
