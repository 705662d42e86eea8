"""lib/fota/https.py, Response.readinto: a server that ignores Range (200 and the whole file)
has the bytes before the offset asked for dropped, however few: one byte, or none."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

BODY = b"0123456789"

# a connection that holds one response, its head then its body, and counts its closes (the
# https tests' fake socket: test_https_mutants4/16/19 use it too)
SOCK = """
from fota import https
class Sock:
    def __init__(self, data):
        self.data, self.at, self.closed = data, 0, 0
    def readline(self, n):
        i = self.data.find(b"\\n", self.at, self.at + n)
        end = self.at + n if i < 0 else i + 1
        line = self.data[self.at:end]
        self.at = end
        return line
    def readinto(self, mv):
        k = min(len(mv), len(self.data) - self.at)
        mv[:k] = self.data[self.at:self.at + k]
        self.at += k
        return k
    def close(self):
        self.closed += 1
"""
READ = SOCK + """
sock = Sock(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(BODY) + BODY)
r = https._response(sock, START)
buf = bytearray(4)
got = b""
while True:
    n = r.readinto(buf)
    if not n:
        break
    got += buf[:n]
out([r.total, r.length, got.decode()])
"""


@pytest.mark.parametrize("start", cases([("from-0", 0), ("skip-1", 1), ("skip-2", 2), ("skip-all-but-1", 9)]))
def test_a_server_ignoring_range_has_the_first_bytes_dropped(start):
    got = mp(READ.replace("BODY", repr(BODY)).replace("START", str(start)))
    assert got == [len(BODY), len(BODY) - start, BODY[start:].decode()]
