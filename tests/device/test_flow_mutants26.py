"""lib/fota/flow.py, _after_trial: the first boot after a trial that stayed confirms the
firmware, and the console says so under the step "confirm" (fota: [confirm] firmware 2.0
confirmed) before the job is reported SUCCEEDED."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
from fota import core, flow, otaslot
said = []
flow.log = lambda step, msg: said.append(["log", step, msg])
flow.confirm = lambda: said.append(["confirm"])
flow.finish = lambda job, status, step, d: said.append(["finish", status, step])
flow.version = lambda: "2.0"
class Apps:
    def version(self):
        return "app-1"
flow.apps = Apps
core.save = lambda rec: said.append(["save", rec["step"]])
otaslot.running = lambda: "p1"
otaslot.slot_index = lambda p: int(p[1])
flow._after_trial(None, {"job": "j-1", "step": "test", "slot": 1, "from": 0, "tries": 1, "old": "1.0", "new": "2.0"})
out(said)
"""


def test_a_trial_that_stayed_is_confirmed_and_the_console_says_so():
    assert mp(RUN) == [["confirm"], ["save", "done"], ["log", "confirm", "firmware 2.0 confirmed"],
                       ["finish", "SUCCEEDED", "confirm"]]
