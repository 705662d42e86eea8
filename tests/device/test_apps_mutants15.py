"""lib/fota/apps.py: capacity counts the old files of the slot a job writes as free (they go
before the new image is unpacked); start loads the library's umqtt.simple before the
application's folder goes first on sys.path, so that an application that carries its own umqtt
leaves the library's MQTT client the library's; discard drops what a slot holds: on the ROMFS
route the first sector of that slot's half only (never the other half, the application that
runs), on the folders route that slot's folder only."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import APPS, cases, mp

CAPACITY = APPS + """
class OS:
    def statvfs(self, p):
        return (4096, 4096, 1000, 900, 900, 0, 0, 0, 0, 255)
apps.os = OS()
apps.segment = lambda: None
apps.FOLDERS = ("app0", "app1")
out([apps.capacity(0), apps.capacity(1), apps.RESERVE])
"""


def test_the_old_files_of_the_slot_count_as_free_space(tmp_path):
    # 900 free blocks of 4 KB; app1 holds a file of 10 bytes (one block) and one of 4097 bytes
    # (two blocks): an image for slot 1 may have those three blocks more than one for the empty
    # slot 0
    (tmp_path / "app1").mkdir()
    (tmp_path / "app1" / "app.py").write_bytes(b"x" * 10)
    (tmp_path / "app1" / "big.bin").write_bytes(b"x" * 4097)
    got = mp(CAPACITY, cwd=tmp_path)
    assert got == [900 * 4096 - 65536, 903 * 4096 - 65536, 65536]


START = """
import sys
from fota import apps
apps.mounted, apps.where = 0, WHERE
app = apps.start(lambda why: out("rejected"))
from umqtt.simple import MQTTClient
import umqtt.simple
out([app.X, hasattr(umqtt.simple, "THEIRS"), hasattr(MQTTClient, "connect")])
"""


def test_an_application_with_its_own_umqtt_leaves_the_library_its_mqtt_client(tmp_path):
    # nothing has loaded umqtt.simple yet (the loop starts the application before it connects):
    # start() loads the library's first, so the application's umqtt, first on sys.path after
    # start(), is not the one the library's MQTT session gets
    (tmp_path / "umqtt").mkdir()
    (tmp_path / "umqtt" / "__init__.py").write_text("")
    (tmp_path / "umqtt" / "simple.py").write_text("THEIRS = 1\nclass MQTTClient:\n    pass\n")
    (tmp_path / "app.py").write_text("X = 1\n")
    assert mp(START.replace("WHERE", repr(str(tmp_path)))) == [1, False, True]


DISCARD = APPS + """
class Seg(bytearray):
    # the ROMFS partition: 8 sectors, two halves of 4; ioctl(6, block) erases a sector
    def ioctl(self, op, arg):
        if op == 4:
            return len(self) // 4096
        if op == 5:
            return 4096
        if op == 6:
            self[arg * 4096:(arg + 1) * 4096] = b"\\xff" * 4096
            return 0
seg = Seg(8 * 4096)
for i in range(8):
    seg[i * 4096:(i + 1) * 4096] = bytes([i]) * 4096
apps.segment = lambda: seg
apps.save(REC)
apps.mounted = MOUNTED
apps.discard(SLOT)
out([seg[i * 4096] for i in range(8)] + [seg[i * 4096 + 4095] for i in range(8)])
"""

RUNS_0 = {"slot": 0, "trial": None, "left": 0, "versions": ["1.0", None], "failed": None}
RUNS_1 = {"slot": 1, "trial": None, "left": 0, "versions": [None, "1.0"], "failed": None}
KEPT = list(range(8)) * 2


@pytest.mark.parametrize("rec,mounted,slot,want", cases([
    ("slot-1-its-first-sector-only", RUNS_0, 0, 1, [0, 1, 2, 3, 255, 5, 6, 7] * 2),
    ("slot-0-its-first-sector-only", RUNS_1, 1, 0, [255, 1, 2, 3, 4, 5, 6, 7] * 2),
    ("the-running-slot-is-kept", RUNS_0, 0, 0, KEPT)]))
def test_discarding_a_romfs_slot_erases_its_first_sector_only(rec, mounted, slot, want, tmp_path):
    code = DISCARD.replace("REC", repr(rec)).replace("MOUNTED", repr(mounted))
    code = code.replace("SLOT", str(slot))
    assert mp(code, cwd=tmp_path) == want


FOLDERS = APPS + """
import os
apps.segment = lambda: None
apps.FOLDERS = ("app0", "app1")
apps.save(REC)
apps.mounted = MOUNTED
apps.discard(SLOT)
out(sorted(n for n in os.listdir() if n.startswith("app") and n != "apps.json"))
"""


@pytest.mark.parametrize("mounted,slot,want", cases([
    ("the-other-folder-goes", 0, 1, ["app0"]),
    ("the-running-folder-stays", 0, 0, ["app0", "app1"])]))
def test_discarding_a_folder_slot_removes_that_folder_only(mounted, slot, want, tmp_path):
    for d in ("app0", "app1"):
        (tmp_path / d / "lib").mkdir(parents=True)
        (tmp_path / d / "app.py").write_text("X = 1\n")
        (tmp_path / d / "lib" / "m.py").write_text("Y = 1\n")
    code = FOLDERS.replace("REC", repr(RUNS_0)).replace("MOUNTED", repr(mounted))
    code = code.replace("SLOT", str(slot))
    assert mp(code, cwd=tmp_path) == want
