"""lib/fota/flow.py, _run through a whole download and its test: the record it saves for the
trial boot says whether the update is an application (so that, after the reset, the trial is
judged by the application's slot, not the firmware's), and the console says which slot is set
for one trial boot."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

# flow._run with its neighbours faked: an install that succeeds, a record kept in `saved`, the
# console in `logs`; KIND is the plan's kind and UPDATE what the job's update does (also for
# test_flow_mutants9.py)
FAKES = """
from fota import flow, core
class Plan:
    md5, slot, kind, version = "a" * 32, 1, KIND, "2.0"
class Install:
    def plan_for(doc):
        return Plan()
    def update(doc, start, progress, conn, disconnect, state):
        return "2.0"
    def test(doc, new):
        pass
sys.modules["fota.install"] = Install
saved, logs = [], []
core.load = lambda: None
core.save = lambda rec: saved.append(dict(rec))
flow.log = lambda step, msg: logs.append([step, msg])
flow.reconnect = lambda jobs: None
flow.version = lambda: "1.0"
flow.otaslot.running = lambda: "p0"
flow.otaslot.slot_index = lambda p: 0
class Apps:
    mounted = 0
    def version(self):
        return "1.0"
flow.apps = lambda: Apps()
class Job:
    id = "j-1"
    status_details = {}
    document = {"operation": "fota"}
    def update(self, status, details):
        UPDATE
class Jobs:
    conn = None
"""
RUN = FAKES.replace("UPDATE", "pass") + "out([flow._run(Jobs(), Job(), False), saved[-1], logs])\n"


@pytest.mark.parametrize("kind,app", cases([("application", "app", True), ("firmware", "fota", None)]))
def test_the_trial_record_names_an_application_and_the_console_its_slot(kind, app):
    reset, rec, logs = mp(RUN.replace("KIND", repr(kind)))
    assert reset is True
    assert rec["step"] == "test" and rec["slot"] == 1 and rec["new"] == "2.0"
    assert rec.get("app") is app  # only an application's record has "app"
    assert ["boot", "slot 1 set for one trial boot"] in logs
