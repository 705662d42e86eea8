"""lib/fota/https.py: without a timeout given, a response's status line and headers have 30 s
(TIMEOUT) to come, and get() gives the same 30 s to the socket for each read."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import HTTPS, cases, mp

DEFAULT = HTTPS + """
s = Sock(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\n", (0, 0, LATE))
try:
    out(["ok", https._response(s, 0).length])
except https.HTTPError as e:
    out("HTTPError: %s" % e)
"""


@pytest.mark.parametrize("late,ok", cases([("inside-30000ms", 30000, True), ("outside-30001ms", 30001, False)]))
def test_the_headers_have_30_s_by_default(late, ok):
    # the end of the headers comes `late` ms after the request, no timeout given
    got = mp(DEFAULT.replace("LATE", str(late)))
    assert got == (["ok", 5] if ok else "HTTPError: no end of the headers in 30 s")


GET = HTTPS + """
class C:
    def hint(self, e):
        return False
    def tls_ok(self):
        pass
https.clock = C()
got = []
def _get(url, ca, start, timeout):
    got.append(timeout)
    return "response"
https._get = _get
https.get("https://h/x", b"")
https.get("https://h/x", b"", 0, 7)
out(got)
"""


def test_get_gives_each_read_30_s_unless_told_otherwise():
    assert mp(GET) == [30, 7]
