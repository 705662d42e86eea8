"""lib/fota/https.py, _response: Response.total is the complete length a Content-Range gives
(`bytes first-last/total`), 0 included, and the body's length only when no Content-Range
came, or when the answer is a 200 (a Content-Range there means nothing, RFC 9110 section
14.4): a caller that checks the server's size (fota/files.py, fota/delta.py) sees what the
server said, not a length put in its place."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_https_mutants import SOCK

HEAD = SOCK + """
r = https._response(Sock(HEAD + b"Content-Length: 10\\r\\n\\r\\n"), START)
out([r.length, r.total])
"""
PARTIAL = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-14/%d\r\n"


@pytest.mark.parametrize("head,start,want", cases([
    ("total-0", PARTIAL % 0, 5, [10, 0]),
    ("total-1", PARTIAL % 1, 5, [10, 1]),
    ("total-15", PARTIAL % 15, 5, [10, 15]),
    ("no-content-range", b"HTTP/1.1 200 OK\r\n", 0, [10, 10]),
    # RFC 9110 14.4: only 206 and 416 give Content-Range a meaning; a 200 is the whole file
    ("content-range-in-a-200", b"HTTP/1.1 200 OK\r\nContent-Range: bytes 0-9/99\r\n", 0, [10, 10]),
    ("content-range-in-a-200-for-a-range", b"HTTP/1.1 200 OK\r\nContent-Range: bytes 0-9/99\r\n", 4,
     [6, 10])]))  # Range ignored: the whole file, whose first 4 bytes are dropped
def test_the_total_is_the_content_ranges_even_when_it_is_0(head, start, want):
    assert mp(HEAD.replace("HEAD +", repr(head) + " +").replace("START", str(start))) == want
