"""lib/fota/otaslot.py's parse_app_desc in MicroPython: the esp_app_desc_t at byte 32 of an app
image (after the 24-byte image header and the first segment's 8-byte header: ESP-IDF's
esp_app_format.h), taken only with its magic word 0xABCD5432, from an image that starts 0xE9
and has its 112 bytes; anything else is no descriptor (SlotWriter.finish refuses such an image
as "not an ESP32 app image")."""

from __future__ import annotations

import struct

from tests.device.mpy import run_json

PARSE = """
import json, sys
class Partition:
    RUNNING, TYPE_APP, TYPE_DATA = 0, 0, 1
class Esp32:
    pass
sys.modules["esp32"] = Esp32()
sys.modules["esp32"].Partition = Partition
from fota import otaslot
print(json.dumps([otaslot.parse_app_desc(bytes.fromhex(h)) for h in %r]))
"""


def head(first: int = 0xE9, magic: int = 0xABCD5432, secure: int = 7, size: int = 112) -> str:
    b = bytes([first]) + bytes(31) + struct.pack("<II", magic, secure) + bytes(8)
    b += b"1.2.3".ljust(32, b"\0") + b"micropython".ljust(32, b"\0")
    return (b + bytes(16))[:size].hex()


def test_an_app_descriptor_is_read_only_with_its_magic_word():
    got = run_json(PARSE % [head(), head(magic=0xABCD5433), head(magic=0xABCD5431), head(magic=0),
                            head(first=0xE8), head(size=111), head(size=128)])
    assert got == [["1.2.3", "micropython", 7], None, None, None, None, None, ["1.2.3", "micropython", 7]]
