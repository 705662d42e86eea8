"""lib/fota/apps.py in MicroPython, with the mounting of a slot replaced by a fake: a slot that
does not mount at boot (a trial slot ends its trial, the confirmed one is no trial to end), and
writer() refusing the slots a job may not write, whatever asks for them."""

from __future__ import annotations

import json

from tests.device.mpy import run_json

PRELUDE = """
import json, sys
class Fake:
    pass
machine = Fake()
machine.reset_cause = lambda: 3
sys.modules["machine"] = machine
class Partition:  # otaslot's, which appwrite imports (no partition is used here)
    RUNNING, TYPE_APP, TYPE_DATA = 0, 0, 1
esp32 = Fake()
esp32.Partition = Partition
sys.modules["esp32"] = esp32
from fota import apps
apps.FOLDERS = ("app0", "app1")  # in the test's folder
apps.segment = lambda: None  # the folders route
"""

BOOT = PRELUDE + """
calls = []
def mount(slot):
    calls.append(slot)
    if slot in BAD:
        raise OSError(19, "slot %d is no ROMFS image" % slot)
apps._mount = mount
apps.save(REC)
try:
    out = ["ok", apps.boot()]
except OSError as e:
    out = ["OSError"] + list(e.args)
print(json.dumps([out, calls, apps.mounted, apps.load()]))
"""


def boot(tmp_path, rec: dict, bad: list[int]) -> list:
    return run_json(f"REC = {rec!r}\nBAD = {bad!r}\n" + BOOT, cwd=tmp_path)


def test_a_trial_slot_that_does_not_mount_ends_its_trial(tmp_path):
    rec = {"slot": 0, "trial": 1, "left": 1, "versions": ["1.0", "2.0"], "failed": None}
    out, calls, mounted, after = boot(tmp_path, rec, [1])
    assert out == ["ok", 0] and calls == [1, 0] and mounted == 0
    assert after == {"slot": 0, "trial": None, "left": 0, "versions": ["1.0", "2.0"],
                     "failed": "slot 1 does not mount: OSError(19, 'slot 1 is no ROMFS image')"}


def test_a_confirmed_slot_that_does_not_mount_is_raised_at_once(tmp_path):
    # no trial to end and nothing to fall back to: boot() raises (boot.py prints it) after one
    # try, and the record stays as it was
    rec = {"slot": 0, "trial": None, "left": 0, "versions": ["1.0", None], "failed": None}
    out, calls, mounted, after = boot(tmp_path, rec, [0])
    assert out == ["OSError", 19, "slot 0 is no ROMFS image"]
    assert calls == [0] and mounted is None and after == rec


def test_a_confirmed_slot_that_does_not_mount_after_a_trial_ended_is_raised_at_once(tmp_path):
    # the trial had no boot left: it ends (the reason kept), and the confirmed slot that does
    # not mount either is raised, not tried twice
    rec = {"slot": 0, "trial": 1, "left": 0, "versions": ["1.0", "2.0"], "failed": None}
    out, calls, mounted, after = boot(tmp_path, rec, [0, 1])
    assert out == ["OSError", 19, "slot 0 is no ROMFS image"]
    assert calls == [0] and mounted is None
    why = "application 2.0 did not confirm (watchdog reset on its trial boot)"
    assert after == dict(rec, trial=None, failed=why)


WRITER = PRELUDE + """
from fota import appwrite
apps.save(REC)
apps.mounted = MOUNTED
out = []
for slot in (0, 1):
    try:
        w = apps.writer(slot, 100)
        out.append(["ok", type(w).__name__, w.path])
    except appwrite.ImageError as e:
        out.append(["ImageError", str(e)])
print(json.dumps([out, apps.load()]))
"""


def writer(tmp_path, rec: dict, mounted) -> list:
    return run_json(f"REC = {rec!r}\nMOUNTED = {mounted!r}\n" + WRITER, cwd=tmp_path)


def refused(slot: int) -> list:
    return ["ImageError", "refusing to write the running application's slot %d" % slot]


def test_writer_refuses_the_running_and_the_confirmed_slot(tmp_path):
    # slot 0 confirmed and running: slot 1 may be written (its old version goes from the record)
    rec = {"slot": 0, "trial": None, "left": 0, "versions": ["1.0", "0.9"], "failed": None}
    out, after = writer(tmp_path, rec, 0)
    assert out == [refused(0), ["ok", "FolderWriter", "app1"]]
    assert after["versions"] == ["1.0", None]


def test_writer_refuses_both_slots_while_one_is_on_trial(tmp_path):
    # slot 1 on trial (running), slot 0 confirmed: neither may be written, and the record keeps
    # both versions
    rec = {"slot": 0, "trial": 1, "left": 0, "versions": ["1.0", "2.0"], "failed": None}
    out, after = writer(tmp_path, rec, 1)
    assert out == [refused(0), refused(1)]
    assert after == rec
    assert json.loads((tmp_path / "apps.json").read_text()) == rec


def test_writer_with_no_application_yet_takes_either_slot(tmp_path):
    rec = {"slot": None, "trial": None, "left": 0, "versions": [None, None], "failed": None}
    out, _ = writer(tmp_path, rec, None)
    assert out == [["ok", "FolderWriter", "app0"], ["ok", "FolderWriter", "app1"]]
