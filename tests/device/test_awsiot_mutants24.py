"""lib/fota/awsiot.py, Connection.ping: a PINGREQ counts as traffic for the keep-alive, so a
quiet session pings once per half keep-alive, not at every wait() after the first ping."""

from __future__ import annotations

from tests.device.mpy import run_json
from tests.device.test_awsiot_mutants11 import SESSION

RUN = SESSION + """
c._connect()
calls.clear()
c.sent = time.ticks_add(time.ticks_ms(), -31000)  # quiet for over half the keep-alive
out = []
for _ in range(3):
    c.wait(0)
    out.append(len(calls))
print(json.dumps(out))
"""


def test_a_quiet_session_pings_once_not_at_every_wait(tmp_path):
    assert run_json(RUN, cwd=tmp_path) == [1, 1, 1]
