"""lib/fota/flow.py's handle_fota_jobs in MicroPython, with the job run (_run), the jobs service
and machine.reset replaced by fakes: its defaults as the device loop calls it (fota/loop.py passes
only force and job_cbk: the README's, so that fota.run() closes the MQTT session for an HTTPS
download and resets into the new firmware), when it looks at the list, what job_cbk takes or
raises; and _drop logging a slot it could not invalidate."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import mp

FLOW = """
from fota import flow
calls = []
machine.reset = lambda: calls.append("reset")
def run(jobs, job, disconnect_mqtt):
    calls.append(["run", job.id, disconnect_mqtt])
    return NEEDS_RESET
flow._run = run
class Job:
    id = "j-1"
    status = "QUEUED"
    status_details = {}
    def __init__(self):
        self.document = {"operation": "fota", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 1000,
                         "bc_url": "https://h/fw.bin", "version": "1.0.1"}
    def describe(self):
        pass
class Jobs:
    def changed(self):
        return True
    def list(self):
        return [], [Job()]
got = flow.handle_fota_jobs(Jobs(), force=True, job_cbk=None)  # as fota/loop.py calls it
out([got, calls])
"""


@pytest.mark.parametrize("needs_reset", [False, True])
def test_the_loop_downloads_with_mqtt_closed_and_resets_into_the_new_firmware(needs_reset):
    got = mp(f"NEEDS_RESET = {needs_reset}\n" + FLOW)
    if needs_reset:  # the update is in the slot: reset now (auto_reset=True)
        assert got == [True, [["run", "j-1", True], "reset"]]
    else:
        assert got == [False, [["run", "j-1", True]]]


# --- the list of jobs: what job_cbk takes, what it raises, when the list is asked for again ---

JOBS = """
from fota import flow
from fota.jobs import JobsError
calls = []
flow._run = lambda jobs, job, disconnect_mqtt: calls.append(["run", job.id]) or False
FOTA = {"operation": "fota", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 1000,
        "bc_url": "https://h/fw.bin", "version": "1.0.1"}
class Job:
    def __init__(self, id, doc):
        self.id, self.doc, self.status, self.status_details = id, doc, "QUEUED", {}
    def describe(self):
        self.document = self.doc
    def update(self, status, details=None):
        calls.append(["update", self.id, status, details])
        self.status = status
class Jobs:
    def __init__(self, lists, changed=True):
        self.lists, self.flag = lists, changed
    def changed(self):
        return self.flag
    def list(self):
        calls.append("list")
        return [], self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
"""


def test_handle_fota_jobs_looks_only_when_the_jobs_changed_unless_forced():
    got = mp(JOBS + """
res = []
for changed, kw in ((False, {}), (True, {}), (False, {"force": True})):
    calls = []
    res.append([flow.handle_fota_jobs(Jobs([[Job("j-1", FOTA)]], changed), **kw), calls])
out(res)
""")
    assert got == [[False, []], [False, ["list", ["run", "j-1"]]], [False, ["list", ["run", "j-1"]]]]


def test_after_job_cbk_ends_a_job_the_list_is_asked_for_again():
    # a service may list only some jobs: the update behind the job the application ended comes
    # in the next list; a job the application keeps pending is offered once and not asked again
    got = mp(JOBS + """
res = []
def ends(job):
    job.update("SUCCEEDED", {})
    return True
for cbk in (ends, lambda job: True):
    calls = []
    res.append([flow.handle_fota_jobs(Jobs([[Job("j-other", {"operation": "reboot"})],
                                            [Job("j-fota", FOTA)]]), job_cbk=cbk), calls])
out(res)
""")
    assert got == [[False, ["list", ["update", "j-other", "SUCCEEDED", {}], "list", ["run", "j-fota"]]],
                   [False, ["list"]]]


def test_a_job_cbk_that_loses_the_connection_is_raised_and_its_job_not_rejected():
    # OSError (the socket) or a Jobs timeout in job_cbk: the caller reconnects, and the job is
    # offered again; any other error rejects the job with the reason
    got = mp(JOBS + """
res = []
for e in (OSError(113), JobsError("Timeout", "no answer"), ValueError("bad reboot")):
    def cbk(job):
        raise e
    calls = []
    try:
        res.append(["returned", flow.handle_fota_jobs(Jobs([[Job("j-1", {"operation": "reboot"})], []]),
                                                      job_cbk=cbk), calls])
    except Exception as x:
        res.append([type(x).__name__, calls])
out(res)
""")
    assert got == [["OSError", ["list"]], ["JobsError", ["list"]],
                   ["returned", False, ["list", ["update", "j-1", "REJECTED",
                                                 {"reason": "job_cbk failed: bad reboot", "step": "jobs"}],
                                        "list"]]]


def test_a_slot_that_cannot_be_invalidated_is_logged():
    got = mp("""
from fota import flow
logged = []
flow.log = lambda step, msg: logged.append([step, msg])
flow.otaslot.slots = lambda: ["ota_0", "ota_1"]
def invalidate(part):
    raise OSError(5)
flow.otaslot.invalidate = invalidate
flow._drop({"job": "j-1", "step": "download", "slot": 1})
out(logged)
""")
    assert got == [["download", "could not invalidate slot 1: [Errno 5] EIO"]]
