# An ESP32-S3 (8 MB flash or more) MicroPython build for over-the-air updates: two 2.4 MB app
# slots (MicroPython's partitions-8MiBplus-ota.csv) plus a 256 KB ROMFS partition for the
# application (partitions.csv, ROMFS on in mpconfigboard.h), bootloader rollback, the app
# version in the app descriptor, and this project's lib/ frozen in. The bootloader is at 0x0
# (board.json flash_offset). On a 16 MB board the same image runs: the filesystem takes the
# rest of the flash.
# The first three defaults are MicroPython's for the ESP32-S3
# (ports/esp32/boards/mpconfigboard_esp32s3_common.cmake, used by ESP32_GENERIC_S3).
# sdkconfig.version and sdkconfig.partitions are written by `make firmware BOARD=FOTA_ESP32S3`.
set(IDF_TARGET esp32s3)

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_quad
    ${MICROPY_BOARD_DIR}/sdkconfig.board
    ${MICROPY_BOARD_DIR}/sdkconfig.fota
    ${MICROPY_BOARD_DIR}/sdkconfig.version
    ${MICROPY_BOARD_DIR}/sdkconfig.partitions
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
