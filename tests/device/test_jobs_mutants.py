"""lib/fota/jobs.py's answers without a broker: an answer is taken only when it carries the
clientToken of the request in flight; a late answer (another token) or any answer while no
request waits is dropped (AWS sends both for a request that timed out and was sent again)."""

from __future__ import annotations

from tests.device.mpy import run_json

FAKE = """
import json
from fota.jobs import Jobs
class Conn:
    # an MQTT connection that answers each request with a late answer first (another token),
    # then its own
    thing = "t1"
    def __init__(self):
        self.fn, self.queue = None, []
    def on(self, prefix, fn):
        self.fn = fn
    def subscribe(self, topic):
        pass
    def connected(self):
        return True
    def publish(self, topic, msg, qos=0):
        token = json.loads(msg)["clientToken"]
        late = {"clientToken": "old-1", "execution": {"jobId": "late"}}
        own = {"clientToken": token, "execution": {"jobId": "own"}}
        self.queue = [(topic + "/accepted", json.dumps(late)), (topic + "/accepted", json.dumps(own))]
    def wait(self, ms):
        if self.queue:
            t, m = self.queue.pop(0)
            self.fn(t, m)
conn = Conn()
jobs = Jobs(conn, timeout_ms=5000)
"""


def test_only_the_answer_with_the_awaited_token_is_taken():
    out = run_json(FAKE + """
got = jobs.start_next()["jobId"]
# answers when no request waits (ones that came after their request timed out), one of them
# without a token at all
jobs.reply = None
jobs._on_msg(jobs.prefix + "start-next/accepted", json.dumps({"execution": {"jobId": "stray"}}))
jobs._on_msg(jobs.prefix + "start-next/rejected", json.dumps({"clientToken": "x-1", "code": "InvalidRequest"}))
print(json.dumps([got, jobs.reply]))
""")
    assert out == ["own", None]
