"""lib/fota/otaslot.py's reading of otadata on the emulated board: of its two sectors, the entry
with the highest sequence number and a good CRC is in force, whichever sector holds it
(ESP-IDF's bootloader_common_get_active_otadata)."""

from __future__ import annotations

import json

import pytest

from emulator.device import Device
from emulator.flash import OTADATA_OFFSET, create_flash
from emulator.flashfmt import OtaEntry
from tests.device.rig import device_folder, firmware

APP = """
import json
from fota import otaslot
print("result:", json.dumps([otaslot.ota_state(otaslot.running()), otaslot.ota_state(otaslot.slots()[1]),
                             otaslot.slot_index(otaslot.running())]))
"""

VALID, NEW = 2, 0


@pytest.mark.parametrize("s0, s1", [
    (OtaEntry(3, VALID), OtaEntry(2, NEW)),  # the newer entry in sector 0
    (OtaEntry(2, NEW), OtaEntry(3, VALID)),  # in sector 1
    (OtaEntry(3, NEW, crc=0), OtaEntry(1, VALID)),  # the newer one's CRC is bad: the older
    (OtaEntry(1, VALID), OtaEntry(0xFFFFFFFF, NEW)),  # one sector erased
], ids=["sector-0", "sector-1", "bad-crc", "erased"])
def test_the_entry_in_force_whichever_sector_holds_it(tmp_path, s0, s1):
    fs = device_folder(tmp_path / "fs", APP)
    flash = tmp_path / "flash.bin"
    create_flash(flash, firmware("1.0.0"))
    with open(flash, "r+b") as f:
        for sector, entry in ((0, s0), (1, s1)):
            f.seek(OTADATA_OFFSET + sector * 4096)
            f.write(entry.pack())
    with Device(flash, fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    line = next(x for x in r.console.splitlines() if x.startswith("result: "))
    assert json.loads(line[len("result: "):]) == [VALID, None, 0], r.console
