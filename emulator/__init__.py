"""An emulated ESP32 (flash, bootloader, esp32/machine modules) for MicroPython firmware."""
