"""lib/fota/awsiot.py's Connection in MicroPython, with the MQTT client and select.poll replaced
by small fakes: who gets a message (the handler of its topic's prefix, nobody else), and wait()
blocking on the session's socket for up to its time before it reads."""

from __future__ import annotations

from tests.device.mpy import run_json

CONNECTION = """
import json
from fota import awsiot
with open("ca.der", "wb") as f:
    f.write(b"ca")
c = awsiot.Connection({"thing": "dev-1", "ca": "ca.der"})
"""

ON_MSG = CONNECTION + """
got = []
c.on("$aws/things/dev-1/jobs/", lambda t, m: got.append(["jobs", t, m.decode()]))
c.on("$aws/things/dev-1/streams/", lambda t, m: got.append(["streams", t, m.decode()]))
out = []
for topic in (b"$aws/things/dev-1/jobs/notify-next", "$aws/things/dev-1/streams/s1/data/json",
              b"$aws/things/dev-2/jobs/notify-next", b"$aws/things/dev-1/shadow/update/accepted",
              b"$aws/things/dev-1/jobs", b"other/topic"):
    got = []
    c.got = False
    c._on_msg(topic, b"m")
    out.append([c.got, got])
print(json.dumps(out))
"""


def test_a_message_goes_to_the_handler_of_its_topic_and_no_other(tmp_path):
    got = run_json(ON_MSG, cwd=tmp_path)
    assert got == [
        [True, [["jobs", "$aws/things/dev-1/jobs/notify-next", "m"]]],
        [True, [["streams", "$aws/things/dev-1/streams/s1/data/json", "m"]]],
        # another thing's topic, a topic nobody asked for, one short of the prefix: nobody's
        [True, []], [True, []], [True, []], [True, []]]


WAIT = CONNECTION + """
import select, time
POLLIN = select.POLLIN
calls = []
class Poll:
    def register(self, obj, mask):
        calls.append(["register", obj, mask == POLLIN])
    def poll(self, ms=-1):
        calls.append(["poll", ms])
        return []
class Select:
    POLLIN = POLLIN
    def poll(self):
        return Poll()
class Sock:
    tls = "tls"
class Client:
    sock = Sock()
    def check_msg(self):
        calls.append("check_msg")
        return None
    def ping(self):
        calls.append("ping")
awsiot.select = Select()
c.client = Client()
out = []
for one in (False, True):
    calls = []
    c.sent = time.ticks_ms()
    c.wait(5000, one=one)
    out.append(calls)
print(json.dumps(out))
"""


def test_wait_blocks_on_the_session_for_up_to_its_time_before_it_reads(tmp_path):
    # poll(ms) returns when the socket has something or ms have passed: without it, wait()
    # would return at once and the loop that calls it would spin
    got = run_json(WAIT, cwd=tmp_path)
    assert got == [[["register", "tls", True], ["poll", 5000], "check_msg"],
                   [["register", "tls", True], ["poll", 5000], "check_msg"]]
