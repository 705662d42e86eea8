"""lib/fota/jobs.py, Jobs.wait(ms): messages are handled for all of ms, down to its last
millisecond (a notification in it ends the wait with True), in pieces of at most 1 s; with no
time left (0 ms) nothing is waited for."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import jobs as jobsmod
jobsmod.time = clk
class Conn:
    thing = "t1"
    def __init__(self):
        self.waits, self.fn = [], None
    def on(self, prefix, fn):
        self.fn = fn
    def subscribe(self, topic):
        pass
    def wait(self, ms):
        # a notification arrives at the end of every wait of the connection
        self.waits.append(ms)
        clk.t += ms
        if clk.t >= NOTIFY_AT:
            self.fn(jobs.prefix + "notify", "{}")
conn = Conn()
jobs = jobsmod.Jobs(conn)
got = jobs.wait(MS)
out([got, conn.waits, clk.t])
"""


@pytest.mark.parametrize("ms,notify_at,want", cases([
    ("no-time-left", 0, 0, [False, [], 0]),
    ("last-millisecond", 1, 1, [True, [1], 1]),
    ("notified-in-the-last-millisecond", 2500, 2500, [True, [1000, 1000, 500], 2500]),
    ("none-in-time", 2500, 2501, [False, [1000, 1000, 500], 2500])]))
def test_messages_are_handled_to_the_last_millisecond(ms, notify_at, want):
    assert mp(RUN.replace("NOTIFY_AT", str(notify_at)).replace("MS", str(ms))) == want
