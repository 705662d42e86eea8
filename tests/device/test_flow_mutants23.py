"""lib/fota/flow.py, _orphaned: when the job of an update on trial is gone, only what that job
installed is confirmed: the application in the slot its record names (not another application
on trial, whatever OTA slot the firmware runs from), or the firmware in the OTA slot its record
names (not an application in a slot of that number); anything else has its record dropped and
stays on trial."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import core, flow, otaslot
class Apps:
    mounted, trial = %(mounted)r, %(trial)r
    def testing(self):
        return self.mounted is not None and self.trial == self.mounted
    def version(self):
        return "app-%%s" %% self.mounted
a = Apps()
flow.apps = lambda: a
done = []
flow.confirm = lambda: done.append("confirm")
flow.testing = lambda: %(fw_trial)r or a.testing()
flow.version = lambda: "fw-%(fw_slot)d"
otaslot.running = lambda: "p"
otaslot.slot_index = lambda p: %(fw_slot)d
core.clear = lambda: done.append("clear")
flow._drop = lambda rec: done.append("drop")
logs = []
flow.log = lambda step, msg: logs.append([step, msg])
flow._orphaned(%(rec)r)
out([done, logs])
"""

APP = {"job": "j-1", "step": "test", "slot": 1, "app": True}
FW = {"job": "j-1", "step": "test", "slot": 1}
CONFIRMED_APP = [["confirm", "clear"], [["confirm", "job j-1 is gone; application app-1 confirmed"]]]
CONFIRMED_FW = [["confirm", "clear"], [["confirm", "job j-1 is gone; firmware fw-1 confirmed"]]]
DROPPED = [["clear"], [["check", "job j-1 is gone; its record is dropped"]]]
CUT = [["drop", "clear"], DROPPED[1]]  # a download's slot may hold part of its image


@pytest.mark.parametrize("rec,mounted,trial,fw_slot,fw_trial,want", cases([
    ("its-application-on-trial", APP, 1, 1, 0, False, CONFIRMED_APP),
    ("another-application-on-trial", APP, 0, 0, 0, False, DROPPED),
    ("another-application-on-trial-firmware-in-ota-1", APP, 0, 0, 1, False, DROPPED),
    ("an-application-record-and-firmware-on-trial", APP, 0, None, 1, True, DROPPED),
    ("its-application-confirmed-already", APP, 1, None, 0, False, DROPPED),
    ("its-firmware-on-trial", FW, 0, None, 1, True, CONFIRMED_FW),
    ("another-firmware-on-trial", FW, 0, None, 0, True, DROPPED),
    ("a-firmware-record-and-an-application-on-trial", FW, 1, 1, 0, False, DROPPED),
    ("an-application-download-cut-short", dict(APP, step="download"), 0, None, 1, False, CUT),
    ("a-firmware-download-cut-short-on-a-trial-boot", dict(FW, step="download"), 0, None, 1, True, CUT)]))
def test_only_what_the_gone_job_installed_is_confirmed(rec, mounted, trial, fw_slot, fw_trial, want):
    code = RUN % {"rec": rec, "mounted": mounted, "trial": trial, "fw_slot": fw_slot, "fw_trial": fw_trial}
    assert mp(code) == want
