"""lib/fota/awsiot.py, Connection._connect: a new session counts as traffic for the keep-alive,
so the first wait() after connecting (or reconnecting after a long quiet spell) sends no PINGREQ;
a session quiet for over half its keep-alive does ping."""

from __future__ import annotations

from tests.device.mpy import run_json

# a Connection over a fake MQTT client whose connects and pings are counted in `calls`
SESSION = """
import json, select, time
import umqtt.simple
from fota import awsiot
with open("ca.der", "wb") as f:
    f.write(b"ca")
calls = []
class Sock:
    tls = "tls"
class Client:
    def __init__(self, *a, **kw):
        self.sock = Sock()
    def set_callback(self, f):
        pass
    def connect(self):
        calls.append("connect")
    def subscribe(self, t):
        pass
    def check_msg(self):
        return None
    def ping(self):
        calls.append("ping")
class Poll:
    def register(self, obj, mask):
        pass
    def poll(self, ms=-1):
        return []
class Select:
    POLLIN = select.POLLIN
    def poll(self):
        return Poll()
umqtt.simple.MQTTClient = Client
awsiot.select = Select()
awsiot._TLS = lambda ctx, host, read_s: "tls"
c = awsiot.Connection({"thing": "dev-1", "ca": "ca.der", "endpoint": "broker", "port": 8883}, keepalive=60)
c.ctx = "ctx"
"""
RUN = SESSION + """out = []
# the last packet of the previous session went 31 s ago: over half the keep-alive
c.sent = time.ticks_add(time.ticks_ms(), -31000)
c._connect()
c.wait(0)
out.append(calls)
calls = []
c.sent = time.ticks_add(time.ticks_ms(), -31000)
c.wait(0)
out.append(calls)
print(json.dumps(out))
"""


def test_a_new_session_sends_no_ping_at_its_first_wait(tmp_path):
    assert run_json(RUN, cwd=tmp_path) == [["connect"], ["ping"]]
