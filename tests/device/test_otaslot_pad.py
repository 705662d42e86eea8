"""lib/otaslot.py's SlotWriter: the last, short sector of an image is padded like erased flash
(0xFF) up to the sector's end, whatever the slot held there before."""

import json

from emulator.device import Device
from emulator.flash import Flash, create_flash
from tests.device.rig import device_folder, firmware

SIZE = 100_000  # 24 whole sectors and 1,696 bytes: 2,400 bytes of padding

APP = """
import json, os
from fota import otaslot
w = otaslot.SlotWriter(otaslot.slots()[1], os.stat("new.bin")[6])
body = open("new.bin", "rb")
while w.written < w.size and w.feed_from(body):
    pass
print("result:", json.dumps({"version": w.finish(None)[0]}))
"""


def test_the_last_sector_is_padded_with_ff(tmp_path):
    fs = device_folder(tmp_path / "fs", APP)
    new = firmware("1.0.1", size=SIZE)
    assert len(new) == SIZE
    (fs / "new.bin").write_bytes(new)
    # the other slot holds an older, larger image: no 0xFF where the padding goes
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"), ota_1=firmware("0.9.0", size=200_000))
    with Device(tmp_path / "flash.bin", fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    line = next(x for x in r.console.splitlines() if x.startswith("result: "))
    assert json.loads(line[len("result: "):]) == {"version": "1.0.1"}
    slot = Flash(tmp_path / "flash.bin").slot_bytes("ota_1")
    end = -(-SIZE // 4096) * 4096
    assert slot[:SIZE] == new
    assert slot[SIZE:end] == b"\xff" * (end - SIZE)
