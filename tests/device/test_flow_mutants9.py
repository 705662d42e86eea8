"""lib/fota/flow.py, _run: when the jobs service does not take the job's IN_PROGRESS update,
the job is not started (nothing saved, no reset) and the console says why."""

from __future__ import annotations

from tests.device.test_bounds import mp
from tests.device.test_flow_mutants6 import FAKES

REFUSE = 'raise OSError("the jobs service refused the update")'
RUN = (FAKES.replace("KIND", '"fota"').replace("UPDATE", REFUSE)
       + "out([flow._run(Jobs(), Job(), False), saved, logs[-1]])\n")


def test_a_job_the_service_does_not_start_says_why_on_the_console():
    assert mp(RUN) == [False, [], ["start", "job not started: the jobs service refused the update"]]
