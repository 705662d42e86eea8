# An ESP32 (4 MB flash) MicroPython build for over-the-air updates:
# two 1.5 MB app slots (MicroPython's OTA partition table), bootloader rollback,
# the app version in the app descriptor, and this project's lib/ frozen in.
set(IDF_TARGET esp32)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    boards/ESP32_GENERIC/sdkconfig.ota
    ${MICROPY_BOARD_DIR}/sdkconfig.fota
    ${MICROPY_BOARD_DIR}/sdkconfig.version
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
