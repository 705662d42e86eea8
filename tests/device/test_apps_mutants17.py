"""lib/fota/apps.py, discard on the ROMFS route: dropping what a job left in a slot erases the
first sector of that slot's half of the ROMFS partition (its ROMFS header, so that it mounts no
more), never a sector of the other half, where the running application may be; the running
or confirmed slot is not touched at all."""

from __future__ import annotations

import json

import pytest

from tests.device.mpy import run_json
from tests.device.test_apps_mutants import PRELUDE

BLOCKS = 64  # of 4096 bytes: two halves of 32 sectors each

DISCARD = PRELUDE + f"""
erased = []
class Segment:  # the ROMFS partition as vfs.rom_ioctl gives it: block count, block size, erase
    def ioctl(self, op, arg):
        if op == 4:
            return {BLOCKS}
        if op == 5:
            return 4096
        if op == 6:
            erased.append(arg)
            return 0
        raise OSError(22)
apps.segment = lambda: Segment()
apps.save(REC)
apps.mounted = MOUNTED
apps.discard(SLOT)
print(json.dumps(erased))
"""


@pytest.mark.parametrize("mounted,slot,want", [
    (0, 1, [BLOCKS // 2]),  # slot 1 starts at the second half
    (1, 0, [0]),
    (0, 0, []),  # the running application's slot: left alone
], ids=["slot-1", "slot-0", "running-slot"])
def test_discard_erases_the_header_of_that_slot_only(mounted, slot, want, tmp_path):
    rec = {"slot": mounted, "trial": None, "left": 0, "versions": ["1.0", "1.0"], "failed": None}
    (tmp_path / "apps.json").write_text(json.dumps(rec))
    got = run_json(f"REC = {rec!r}\nMOUNTED = {mounted!r}\nSLOT = {slot!r}\n" + DISCARD, cwd=tmp_path)
    assert got == want
