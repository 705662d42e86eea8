"""lib/fota/awsiot.py, Connection.ping: a PINGREQ counts as traffic for the keep-alive, so a
quiet session pings once per half keep-alive, not at every wait() after the first ping."""

from __future__ import annotations

from tests.device.mpy import run_json

RUN = """
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
        pass
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
c._connect()
c.sent = time.ticks_add(time.ticks_ms(), -31000)  # quiet for over half the keep-alive
out = []
for _ in range(3):
    c.wait(0)
    out.append(len(calls))
print(json.dumps(out))
"""


def test_a_quiet_session_pings_once_not_at_every_wait(tmp_path):
    assert run_json(RUN, cwd=tmp_path) == [1, 1, 1]
