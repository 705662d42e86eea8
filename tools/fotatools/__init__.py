"""Host tools for MicroPython ESP32 FOTA over AWS IoT Jobs."""

__version__ = "0.1.0"
