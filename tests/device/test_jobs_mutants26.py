"""lib/fota/jobs.py, Jobs.describe: the DescribeJobExecution request names the execution when it
is given (executionNumber, as AWS IoT's jobs/<id>/get takes it), and leaves it out otherwise so
that AWS describes the latest execution."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
import json
from fota import jobs as jobsmod
jobsmod.time = clk
class Conn:
    thing = "t1"
    def __init__(self):
        self.sent = []
    def on(self, prefix, fn):
        self.fn = fn
    def subscribe(self, topic):
        pass
    def publish(self, topic, msg):
        req = json.loads(msg)
        self.sent.append([topic[len(jobs.prefix):], req.get("executionNumber", "none")])
        ex = {"jobId": "j-1", "status": "QUEUED", "versionNumber": 1, "executionNumber": 7}
        self.answer = (topic + "/accepted", json.dumps({"clientToken": req["clientToken"], "execution": ex}))
    def wait(self, ms):
        self.fn(*self.answer)
conn = Conn()
jobs = jobsmod.Jobs(conn)
jobs.describe("j-1", NUMBER)
out(conn.sent)
"""


@pytest.mark.parametrize("number,want", cases([
    ("execution-0", 0, 0),
    ("execution-7", 7, 7),
    ("latest", None, "none")]))
def test_describe_names_the_execution_when_given(number, want):
    assert mp(RUN.replace("NUMBER", repr(number))) == [["j-1/get", want]]
