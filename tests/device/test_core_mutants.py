"""lib/fota/core.py on the emulated board: the record of the update in flight (load() gives
back a saved record; anything else in fota.json, or no file, is no record)."""

from __future__ import annotations

import json

from emulator.device import Device
from emulator.flash import create_flash
from tests.device.rig import device_folder, firmware

APP = """
import json, os
from fota import core
out = [core.load()]  # no file
core.save({"job": "j-1", "step": "download", "done": 4096})
out.append(core.load())
for text in ('[1, 2]', '"job"', '{"step": "download"}', '{"job": ', ''):
    with open(core.RECORD, "w") as f:
        f.write(text)
    out.append(core.load())
print("result:", json.dumps(out))
"""


def test_load_gives_back_a_saved_record_and_nothing_else(tmp_path):
    fs = device_folder(tmp_path / "fs", APP)
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    with Device(tmp_path / "flash.bin", fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    line = next(x for x in r.console.splitlines() if x.startswith("result: "))
    assert json.loads(line[len("result: "):]) == [None, {"job": "j-1", "step": "download", "done": 4096},
                                                  None, None, None, None, None]
