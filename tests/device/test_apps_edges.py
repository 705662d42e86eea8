"""lib/fota/apps.py's admit(): the version an application image is taken as, in MicroPython."""

from __future__ import annotations

from tests.device.mpy import run_json

ADMIT = """
import json
from fota import apps
out = [apps.version()]
for own, said, signed in %s:
    try:
        out.append(apps.admit(own, said, signed, lambda a, b: a > b))
    except ValueError as e:
        out.append("error: %%s" %% e)
print(json.dumps(out))
"""


def test_the_version_an_image_is_taken_as(tmp_path):
    cases = [("1.0", "1.1", False), ("1.0", None, False), (None, "2.0", False), (None, None, False),
             ("", "", False), ("1.0", "1.0", False), ("", "2.0", False), (None, None, True),
             ("3.0", None, True), ("3.0", "3.0", True), ("3.0", "3.1", True)]
    got = run_json(ADMIT % repr(cases), cwd=tmp_path)
    assert got == ["none",  # no application yet: any signed version is newer
                   "error: the image is version 1.0, the document says 1.1", "1.0", "2.0", "unknown",
                   "unknown", "1.0", "2.0", "error: a signed application must carry its VERSION file",
                   "3.0", "3.0", "error: the image is version 3.0, the document says 3.1"]


OVERSIZE = """
import json
from fota import apps
class Seg(bytearray):  # a ROMFS partition of 8 blocks of 512 bytes: two slots of 2048
    def ioctl(self, op, arg):
        return {4: 512, 5: len(self) // 512}[op]
out = []
for slot, head in %r:
    s = Seg(4096)
    s[slot * 2048:slot * 2048 + len(head)] = head
    out.append(apps._oversize(s, slot))
print(json.dumps(out))
"""


def test_a_romfs_image_longer_than_its_slot_both_slots_both_sides():
    # header: d2 cd 31, the payload's length as a varuint; its own bytes count (extmod/vfs_rom.c)
    def head(n: int) -> bytes:
        out = [n & 0x7F]
        n >>= 7
        while n:
            out.insert(0, 0x80 | n & 0x7F)
            n >>= 7
        return b"\xd2\xcd\x31" + bytes(out)

    cases = []
    for slot in (0, 1):
        cases += [(slot, head(2043)), (slot, head(2044)), (slot, head(100)), (slot, head(10**6)),
                  (slot, b"\xd2\xcd\x30" + bytes([0x7F])), (slot, b""), (slot, head(2**28)),
                  (slot, b"\xd2\xcd\x31" + b"\xff" * 5)]  # a length of five bytes, or none that ends
    got = run_json(OVERSIZE % cases)
    for slot in (0, 1):
        over = "ROMFS slot %d holds an image of %%d bytes, more than the slot's 2048" % slot
        assert got[slot * 8:slot * 8 + 8] == [None, over % 2049, None, over % (10**6 + 6), None, None,
                                              over % (2**28 + 8), over % (2**35 - 1)], slot


REJECT = """
import json
from fota import apps
apps.reject("self-test failed")
print(json.dumps(apps.load()))
"""


def test_reject_ends_a_trial_and_only_a_trial(tmp_path):
    import json

    confirmed = {"slot": 0, "trial": None, "left": 0, "versions": ["2.0.0", None], "failed": None}
    (tmp_path / "apps.json").write_text(json.dumps(confirmed))
    assert run_json(REJECT, cwd=tmp_path) == confirmed
    assert json.loads((tmp_path / "apps.json").read_text()) == confirmed
    trial = {"slot": 0, "trial": 1, "left": 0, "versions": ["2.0.0", "2.1.0"], "failed": None}
    (tmp_path / "apps.json").write_text(json.dumps(trial))
    assert run_json(REJECT, cwd=tmp_path) == dict(trial, trial=None, failed="self-test failed")


def test_an_application_whose_self_test_raises_is_rolled_back(rig):
    from tests.device import appimage
    from tests.device.test_apps import publish_app, record, seeded
    from tests.device.test_main import run_until

    r = seeded(rig, telemetry_s=1)
    job = publish_app(r, appimage.app("2.1.0", "def selftest(jobs):\n    raise ValueError('sensor gone')\n"))
    result, console = run_until(r, job, "FAILED")
    reason = r.execution(job).status_details["reason"]
    assert reason == "rolled back: self-test failed: application self-test raised ValueError('sensor gone',)", reason
    assert record(r)["slot"] == 0 and record(r)["trial"] is None
