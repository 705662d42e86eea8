"""lib/fota/https.py: a response with "Transfer-Encoding: identity" (RFC 2616's name for no
encoding) is read by its Content-Length, any other transfer coding is refused; the watchdog's
feed is called for each piece of a body dropped before the offset asked for (a server that
ignored Range); closing a response closes its socket once, a second close does nothing."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_https_mutants import SOCK


CODING = SOCK + """
s = Sock(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: TE\\r\\nContent-Length: 10\\r\\n\\r\\n0123456789")
try:
    out(https._response(s, 0).length)
except https.HTTPError as e:
    out("HTTPError: %s" % e)
"""


@pytest.mark.parametrize("te,want", cases([
    ("identity", "identity", 10), ("identity-upper-case", "IDENTITY", 10),
    ("chunked", "chunked", "HTTPError: no Content-Length in response"),
    ("gzip", "gzip", "HTTPError: no Content-Length in response")]))
def test_only_the_identity_transfer_coding_is_read_by_its_length(te, want):
    assert mp(CODING.replace("TE", te)) == want


FEED = SOCK + """
body = bytes(range(256)) * 12  # 3072 bytes
s = Sock(b"HTTP/1.1 200 OK\\r\\nContent-Length: 3072\\r\\n\\r\\n" + body)
r = https._response(s, START)
fed = []
r.feed = lambda: fed.append(r.skip)
buf = bytearray(1024)
n = r.readinto(buf)
out([n, bytes(buf[:n]) == body[START:START + n], fed])
"""


@pytest.mark.parametrize("start,want", cases([
    ("skip-1", 1, [1024, True, [0]]),
    ("skip-2500", 2500, [572, True, [1476, 452, 0]])]))
def test_the_watchdog_is_fed_for_each_piece_dropped(start, want):
    assert mp(FEED.replace("START", str(start))) == want


CLOSE = SOCK + """
s = Sock(b"HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nabc")
r = https._response(s, 0)
r.close()
r.close()
out([s.closed, r.sock is None])
"""


def test_a_second_close_does_not_close_the_socket_again():
    assert mp(CLOSE) == [1, True]
