"""lib/fota/awsiot.py, Connection.close: the session ends with an MQTT DISCONNECT (the broker
then drops it as a clean close, and umqtt.simple closes the socket and its TLS buffers); only
when that fails is the socket closed without it. Either way the connection is closed after,
and closing a closed one does nothing."""

from __future__ import annotations

import pytest

from tests.device.mpy import run_json
from tests.device.test_awsiot_mutants import CONNECTION
from tests.device.test_bounds import cases

RUN = CONNECTION + """
calls = []
class Sock:
    def close(self):
        calls.append("sock.close")
class Client:
    sock = Sock()
    def disconnect(self):
        calls.append("disconnect")
        if FAILS:
            raise OSError(104)
c.client = Client()
c.close()
after = [c.connected(), c.client is None]
c.close()
print(json.dumps([calls, after]))
"""


@pytest.mark.parametrize("fails,want", cases([
    ("disconnect", False, [["disconnect"], [False, True]]),
    ("disconnect-fails", True, [["disconnect", "sock.close"], [False, True]])]))
def test_close_sends_a_disconnect_and_closes_the_socket_only_if_that_fails(fails, want, tmp_path):
    assert run_json(RUN.replace("FAILS", str(fails)), cwd=tmp_path) == want
