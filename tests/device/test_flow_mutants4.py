"""lib/fota/flow.py, _run after a power cut mid-download: it goes on from the bytes the record
says are in flash (and the codec's state with them) only for the same image into the same slot;
another image, or the same into the other slot, starts over from byte 0."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import flow, core, plan
class Stop(Exception):
    pass
class Plan:
    md5, slot, kind, version = "a" * 32, 1, "fota", "2.0"
calls = []
class Install:
    def plan_for(doc):
        return Plan()
    def update(doc, start, progress, conn, disconnect, state):
        calls.append([start, state])
        raise Stop()  # the download itself is not what this tests
sys.modules["fota.install"] = Install
core.load = lambda: REC
core.save = lambda rec: None
flow.version = lambda: "1.0"
flow.otaslot.slot_index = lambda p: 0
class Job:
    id = "j-1"
    status_details = {"step": "download"}
    document = {"operation": "fota"}
    def update(self, status, details):
        pass
class Jobs:
    conn = None
try:
    flow._run(Jobs(), Job(), False)
except Stop:
    pass
out(calls)
"""

SAME = {"job": "j-1", "step": "download", "slot": 1, "from": 0, "tries": 1, "old": "1.0",
        "md5": "a" * 32, "done": 8192, "codec": [2, 300], "files": {}}


@pytest.mark.parametrize("rec,want", cases([
    ("same-image-same-slot", SAME, [8192, [2, 300]]),
    ("another-image", dict(SAME, md5="b" * 32), [0, None]),
    ("same-image-other-slot", dict(SAME, slot=0), [0, None]),
    ("no-record", None, [0, None])]))
def test_a_download_cut_short_goes_on_only_for_the_same_image_and_slot(rec, want):
    got = mp(RUN.replace("REC", repr(rec)))
    assert got == [want]
