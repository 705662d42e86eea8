"""lib/fota/flow.py's handle_fota_jobs as the device loop calls it (fota/loop.py passes only
force and job_cbk): its defaults are the README's, so that fota.run() closes the MQTT session
for an HTTPS download and resets into the new firmware. In MicroPython, with the job run
(_run) and machine.reset replaced by fakes."""

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
