"""lib/fota/flow.py, _after_trial: after a trial boot that did not stay, the reason comes from
the OTA state of the slot the record names, and slot 0 is a slot like any other (only -1, the
record of a firmware that was lost, has none to look at)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import flow, otaslot
failed = []
flow.fail = lambda job, step, reason: failed.append([step, reason])
flow.version = lambda: "1.0"
flow.apps = lambda: None
otaslot.slots = lambda: ["p0", "p1"]
otaslot.running = lambda: "p%d" % RUNNING
otaslot.slot_index = lambda p: int(p[1])
otaslot.ota_state = lambda p: otaslot.OTA_ABORTED  # the bootloader rolled the trial back
flow._after_trial(None, REC)
out(failed)
"""


@pytest.mark.parametrize("slot,running,step,want", cases([
    ("trial-of-slot-0", 0, 1, "test", "rolled back: firmware 2.0 did not confirm"),
    ("trial-of-slot-1", 1, 0, "test", "rolled back: firmware 2.0 did not confirm"),
    ("lost-record", -1, 0, "lost", "rolled back: running 1.0, not 2.0")]))
def test_a_trial_rolled_back_is_named_from_its_slots_state_slot_0_included(slot, running, step, want):
    rec = {"job": "j-1", "step": step, "slot": slot, "from": -1, "tries": 1, "old": "1.0", "new": "2.0"}
    got = mp(RUN.replace("RUNNING", str(running)).replace("REC", repr(rec)))
    assert got == [["rollback", want]]
