"""lib/otaslot.py's SlotWriter on the emulated board: what it refuses to start, and what an
abort leaves behind."""

import json

from emulator.device import Device
from emulator.flash import Flash, create_flash
from tests.device.rig import device_folder, firmware

BODY = """
# the body of a response: readinto() as a socket's
class Body:
    def __init__(self, data):
        self.data, self.pos = data, 0
    def readinto(self, buf):
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n
"""

APP = BODY + """
import json
from fota import otaslot
def err(f):
    try:
        f()
        return None
    except otaslot.SlotError as e:
        return str(e)
other = otaslot.slots()[1]
out = {
    "running": err(lambda: otaslot.SlotWriter(otaslot.running(), 4096)),
    "too big": err(lambda: otaslot.SlotWriter(other, 0x180000 + 1)),
    "empty": err(lambda: otaslot.SlotWriter(other, 0)),
    "unaligned resume": err(lambda: otaslot.SlotWriter(other, 100000, start=4096 + 512)),
}
head = open("new.bin", "rb").read()  # the first three sectors of a 100 000-byte image
w = otaslot.SlotWriter(other, 100000)
body = Body(head)
while w.feed_from(body):
    pass
w._flush()
out["written"] = w.sector
out["version before abort"] = otaslot.app_desc(other)[0]
w.abort()
print("result:", json.dumps(out))
"""


def test_slot_writer_refusals_and_abort(tmp_path):
    fs = device_folder(tmp_path / "fs", APP)
    new = firmware("1.0.1", size=100_000)
    (fs / "new.bin").write_bytes(new[:3 * 4096])
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    with Device(tmp_path / "flash.bin", fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    line = next(x for x in r.console.splitlines() if x.startswith("result: "))
    out = json.loads(line[len("result: "):])
    assert out == {
        "running": "refusing to write the running slot",
        "too big": "image of 1572865 bytes does not fit the 1572864-byte slot",
        "empty": "image of 0 bytes does not fit the 1572864-byte slot",
        "unaligned resume": "resume offset 4608 is not a sector boundary",
        "written": 3,
        "version before abort": "1.0.1",
    }
    f = Flash(tmp_path / "flash.bin")
    assert f.app_desc("ota_1") is None  # the header is gone: nothing can boot the slot
    assert f.boot_slot() == "ota_0"


PAD_APP = BODY + """
import json
from fota import otaslot
other = otaslot.slots()[1]
out = {}
for size in (4096 + 1, 4096 + 2, 4096 + 3, 4096 + 1000, 2 * 4096 - 1):
    data = bytes((i * 7 + 1) % 255 for i in range(size))  # never 0xFF
    w = otaslot.SlotWriter(other, size)
    body = Body(data)
    while w.feed_from(body):
        pass
    w._flush()
    last = bytearray(4096)
    other.readblocks(1, last)
    tail = size - 4096
    out[size] = [last[:tail] == data[4096:], last[tail:] == b"\\xff" * (4096 - tail)]
print("result:", json.dumps(out))
"""


def test_the_last_short_sector_is_padded_like_erased_flash(tmp_path):
    # The sector's buffer still holds the previous sector's bytes: every byte after the
    # image's end must be written as 0xFF, for tails of 1, 2, 3, 1000 and 4095 bytes.
    fs = device_folder(tmp_path / "fs", PAD_APP)
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    with Device(tmp_path / "flash.bin", fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    line = next(x for x in r.console.splitlines() if x.startswith("result: "))
    assert json.loads(line[len("result: "):]) == {
        str(n): [True, True] for n in (4097, 4098, 4099, 5096, 8191)}
