"""lib/fota/flow.py, _run: when the jobs service does not take the job's IN_PROGRESS update,
the job is not started (nothing saved, no reset) and the console says why."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
from fota import flow, core
class Plan:
    md5, slot, kind, version = "a" * 32, 1, "fota", "2.0"
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
        raise OSError("the jobs service refused the update")
class Jobs:
    conn = None
out([flow._run(Jobs(), Job(), False), saved, logs[-1]])
"""


def test_a_job_the_service_does_not_start_says_why_on_the_console():
    assert mp(RUN) == [False, [], ["start", "job not started: the jobs service refused the update"]]
