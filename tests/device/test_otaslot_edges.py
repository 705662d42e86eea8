"""lib/fota/otaslot.py's reading of otadata on the emulated board: of its two sectors, the entry
with the highest sequence number and a good CRC is in force, whichever sector holds it
(ESP-IDF's bootloader_common_get_active_otadata); its state by name, and which one puts the
firmware on trial."""

from __future__ import annotations

import json

import pytest

from emulator.device import Device
from emulator.flash import OTADATA_OFFSET, create_flash
from emulator import flashfmt as ff
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


TESTING = """
import json, struct
from esp32 import Partition
from fota import core, otaslot
data = Partition.find(Partition.TYPE_DATA, 0)[0]  # otadata
buf = bytearray(4096)
best = None
for sector in (0, 1):
    data.readblocks(sector, buf)
    seq = struct.unpack_from("<I", buf, 0)[0]
    if seq != 0xFFFFFFFF and (best is None or seq > best[0]):
        best = (seq, sector)
NAMES = ("OTA_NEW", "OTA_PENDING_VERIFY", "OTA_VALID", "OTA_INVALID", "OTA_ABORTED", "OTA_UNDEFINED")
out = []
for state in STATES:
    data.readblocks(best[1], buf)
    struct.pack_into("<I", buf, 24, state)
    data.writeblocks(best[1], buf)
    got = otaslot.ota_state(otaslot.running())
    out.append([got, [n for n in NAMES if getattr(otaslot, n) == got], core.firmware_testing()])
print("result:", json.dumps(out))
"""


def test_each_otadata_state_has_its_name_and_only_pending_verify_is_on_trial(tmp_path):
    # With rollback on, the bootloader turns a NEW slot into PENDING_VERIFY as it boots it; a
    # bootloader without rollback leaves it NEW, and then the firmware is not on trial: only
    # PENDING_VERIFY is. The entry in force is rewritten with each state of ESP-IDF's
    # esp_ota_img_states_t (as the emulated bootloader writes them) while the firmware runs:
    # each has its one name in otaslot.
    states = [(ff.OTA_IMG_NEW, "OTA_NEW"), (ff.OTA_IMG_PENDING_VERIFY, "OTA_PENDING_VERIFY"),
              (ff.OTA_IMG_VALID, "OTA_VALID"), (ff.OTA_IMG_INVALID, "OTA_INVALID"),
              (ff.OTA_IMG_ABORTED, "OTA_ABORTED"), (ff.OTA_IMG_UNDEFINED, "OTA_UNDEFINED")]
    fs = device_folder(tmp_path / "fs", TESTING.replace("STATES", repr(tuple(s for s, _ in states))))
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    with Device(tmp_path / "flash.bin", fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    line = next(x for x in r.console.splitlines() if x.startswith("result: "))
    assert json.loads(line[len("result: "):]) == [[s, [name], name == "OTA_PENDING_VERIFY"] for s, name in states]
