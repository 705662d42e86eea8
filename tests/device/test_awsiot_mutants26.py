"""lib/fota/awsiot.py, Connection.connect: only a refusal that moved the clock (clock.hint says
True: the certificate dates did not fit) is worth another handshake at once; any other failure
(refused, unreachable, a bad key) is raised from the first handshake, and the clock is asked
about each failure."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import AWSIOT, cases, mp

RUN = AWSIOT + """
hints = []
class C:
    DEFAULT = ()
    def ready(self, ntp, feed):
        pass
    def hint(self, e):
        hints.append(str(e))
        return MOVED
    def tls_ok(self):
        pass
awsiot.clock = C()
n = [0]
def connect():
    n[0] += 1
    if n[0] == 1:
        raise OSError("ECONNREFUSED")
conn._connect = connect
out([error(conn.connect), n[0], hints])
"""


@pytest.mark.parametrize("moved,want", cases([
    ("clock-not-moved", False, ["OSError: ECONNREFUSED", 1, ["ECONNREFUSED"]]),
    ("clock-moved", True, ["ok", 2, ["ECONNREFUSED"]])]))
def test_only_a_refusal_that_moved_the_clock_is_tried_again(moved, want, tmp_path):
    assert mp(RUN.replace("MOVED", str(moved)), cwd=tmp_path) == want
