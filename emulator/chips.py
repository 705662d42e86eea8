"""The chips the emulated board can be: the ESP32, the ESP32-S3 and the ESP32-C3.

This module runs unchanged under CPython and MicroPython (the emulated board imports it).

Sources of each fact:
- chip id in the app image header: esp_app_format.h (esp_chip_id_t: ESP32 0x0000,
  ESP32-C3 0x0005, ESP32-S3 0x0009); esptool's targets/*.py IMAGE_CHIP_ID say the same.
- where the ROM loads the second-stage bootloader from: esptool targets/*.py
  BOOTLOADER_FLASH_OFFSET (0x1000 on the ESP32, 0x0 on the ESP32-S3 and ESP32-C3); the
  partition table is at 0x8000 on all three.
- the revision range an ESP-IDF build writes into its images (min_chip_rev_full,
  max_chip_rev_full): Kconfig.hw_support of esp_hw_support/port/<chip> (ESP32-S3: min v0.0,
  max v0.99; ESP32-C3: min v0.3 by default, which MicroPython's sdkconfig.c3 also sets, max
  v0.99); the ESP32's (min v0.0, max v3.99) are the emulator's images of old.
- memory map (where segments are mapped or loaded): esptool targets/*.py MEMORY_MAP and
  IROM_MAP_START/DROM_MAP_START.
- what MicroPython reports: sys.implementation._machine is MICROPY_HW_BOARD_NAME " with "
  MICROPY_HW_MCU_NAME (ports/esp32/boards/ESP32_GENERIC*/mpconfigboard.h); _mpy's arch is
  xtensawin (10) on the ESP32 and ESP32-S3, rv32imc (11) on the ESP32-C3 (py/persistentcode.h;
  ports/esp32/mpconfigport.h enables MICROPY_EMIT_RV32 on RISC-V since v1.24);
  platform.platform()'s architecture is MICROPY_PLATFORM_ARCH (py/mpconfig.h via
  extmod/modplatform.h: "xtensa", "riscv").
- console: ESP32 boards have a USB-UART bridge on UART0; the ESP32-S3 and ESP32-C3 have USB
  Serial/JTAG on chip (the S3 also USB OTG, which MicroPython's ESP32_GENERIC_S3 uses as its
  USB CDC REPL: MICROPY_HW_ENABLE_USBDEV = SOC_USB_OTG_SUPPORTED), and their generic boards
  keep a REPL on UART0 too (MICROPY_HW_ENABLE_UART_REPL).
- the ROM's first line after reset: "ets Jul 29 2019 12:21:46" on the ESP32,
  "ESP-ROM:esp32s3-20210327" and "ESP-ROM:esp32c3-api1-20210207" on the others.
"""

MiB = 1024 * 1024


class Chip:
    def __init__(self, key, name, chip_id, rev_full, min_rev_full, max_rev_full, bootloader,
                 flash_mb, mcu, board, build, fota_board, fota_build, arch, mpy_arch,
                 console, rom, irom, drom, load_regions, dram, iram):
        self.key = key  # what esptool's --chip takes: "esp32s3"
        self.name = name  # "ESP32-S3"
        self.chip_id = chip_id
        self.rev_full = rev_full  # the emulated chip's own revision, major * 100 + minor
        self.min_rev_full = min_rev_full  # what its ESP-IDF build writes into an image
        self.max_rev_full = max_rev_full
        self.bootloader = bootloader  # flash offset of the second-stage bootloader
        self.flash_mb = flash_mb  # flash sizes the emulator lays out, the first the default
        self.mcu = mcu  # MICROPY_HW_MCU_NAME
        self.board = board  # MICROPY_HW_BOARD_NAME of MicroPython's generic board
        self.build = build  # sys.implementation._build of that board
        self.fota_board = fota_board  # the same for this project's board (firmware/)
        self.fota_build = fota_build
        self.arch = arch  # platform.platform()'s architecture
        self.mpy_arch = mpy_arch
        self.console = console
        self.rom = rom
        self.irom = irom  # (low, high) of the flash-mapped instruction range
        self.drom = drom
        self.load_regions = load_regions  # RAM a loaded segment may go to
        self.dram = dram  # load addresses of the emulator's images' DRAM and IRAM segments
        self.iram = iram

    def revision(self, full=None):
        full = self.rev_full if full is None else full
        return "v%d.%d" % (full // 100, full % 100)

    def machine(self, fota):
        # sys.implementation._machine (and os.uname().machine): "<board> with <mcu>"
        return (self.fota_board if fota else self.board) + " with " + self.mcu

    def __repr__(self):
        return "Chip(%s)" % self.key


ESP32 = Chip(
    "esp32", "ESP32", 0x0000, 301, 0, 399, 0x1000, (4,),
    "ESP32", "Generic ESP32 module", "ESP32_GENERIC-OTA",
    "ESP32 with AWS IoT FOTA", "FOTA_ESP32", "xtensa", 10,
    "UART0 (USB-UART bridge)", "ets Jul 29 2019 12:21:46",
    (0x400D0000, 0x40400000), (0x3F400000, 0x3F800000),
    ((0x3FFAE000, 0x40000000),  # DRAM
     (0x40070000, 0x400C0000),  # IRAM
     (0x400C0000, 0x400C2000),  # RTC fast (instruction bus)
     (0x3FF80000, 0x3FF82000),  # RTC fast (data bus)
     (0x50000000, 0x50002000)),  # RTC slow
    0x3FFB0000, 0x40080000)

ESP32S3 = Chip(
    "esp32s3", "ESP32-S3", 0x0009, 2, 0, 99, 0x0, (8, 4, 16),
    "ESP32-S3", "Generic ESP32S3 module", "ESP32_GENERIC_S3",
    "ESP32-S3 with AWS IoT FOTA", "FOTA_ESP32S3", "xtensa", 10,
    "USB Serial/JTAG or USB OTG CDC (native USB), UART0", "ESP-ROM:esp32s3-20210327",
    (0x42000000, 0x44000000), (0x3C000000, 0x3E000000),
    ((0x3FC88000, 0x3FD00000),  # DRAM
     (0x40370000, 0x403E0000),  # IRAM
     (0x600FE000, 0x60100000),  # RTC fast
     (0x50000000, 0x50002000)),  # RTC slow
    0x3FC90000, 0x40378000)

ESP32C3 = Chip(
    "esp32c3", "ESP32-C3", 0x0005, 4, 3, 99, 0x0, (4,),
    "ESP32-C3", "ESP32C3 module", "ESP32_GENERIC_C3",
    "ESP32-C3 with AWS IoT FOTA", "FOTA_ESP32C3", "riscv", 11,
    "USB Serial/JTAG (native USB), UART0", "ESP-ROM:esp32c3-api1-20210207",
    (0x42000000, 0x42800000), (0x3C000000, 0x3C800000),
    ((0x3FC80000, 0x3FCE0000),  # DRAM
     (0x4037C000, 0x403E0000),  # IRAM
     (0x50000000, 0x50002000)),  # RTC fast
    0x3FC90000, 0x40380000)

CHIPS = {c.key: c for c in (ESP32, ESP32S3, ESP32C3)}


def get(key):
    """The Chip called `key` ("esp32", "esp32s3", "esp32c3"); a Chip is returned as is."""
    if isinstance(key, Chip):
        return key
    try:
        return CHIPS[key or "esp32"]
    except KeyError:
        raise ValueError("unknown chip %r (one of %s)" % (key, ", ".join(CHIPS))) from None


def by_id(chip_id):
    """The Chip of an image header's chip id, or None."""
    for c in CHIPS.values():
        if c.chip_id == chip_id:
            return c
    return None


BOARD_FACTS = ("key", "chip_id", "rev_full", "mcu", "board", "build", "fota_board", "fota_build",
               "arch", "mpy_arch", "irom", "drom", "load_regions")


def board_facts(chip):
    """What the board's own modules need of the chip (emulator/port/_esp32emu.py's CHIP), as
    JSON-able values: the runner hands them over in ESP32_CHIP_FACTS, so that the board does
    not import this module into its heap (compiling it there cost a job of three files 12 KB
    and more of the heap a real board would have)."""
    chip = get(chip)
    return {k: getattr(chip, k) for k in BOARD_FACTS}


def memmap(chip):
    """(irom, drom, load regions) for flashfmt.verify_image."""
    chip = get(chip)
    return (chip.irom, chip.drom, chip.load_regions)
