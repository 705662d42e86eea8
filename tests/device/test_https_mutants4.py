"""lib/fota/https.py, _response: a status line is "HTTP/1.x code reason", and the reason may be
empty (RFC 9112 section 4: `status-line = HTTP-version SP status-code SP [ reason-phrase ]`): a
line of two words is an answer; one of fewer is not."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_https_mutants import SOCK

HEAD = SOCK + """
def status():
    r = https._response(Sock(LINE + b"Content-Length: 5\\r\\n\\r\\n"), 0)
    return [r.status, r.length]
try:
    out(status())
except Exception as e:
    out("%s: %s" % (type(e).__name__, e))
"""


@pytest.mark.parametrize("line,want", cases([
    ("inside-no-reason", b"HTTP/1.1 200 \r\n", [200, 5]),
    ("inside-no-reason-no-space", b"HTTP/1.1 200\r\n", [200, 5]),
    ("inside-reason", b"HTTP/1.1 200 OK\r\n", [200, 5]),
    ("outside-no-status", b"HTTP/1.1\r\n", "HTTPError: bad status line"),
    ("outside-not-http", b"ICY 200 OK\r\n", "HTTPError: bad status line")]))
def test_a_status_line_with_an_empty_reason_is_an_answer(line, want):
    assert mp(HEAD.replace("LINE", repr(line))) == want
