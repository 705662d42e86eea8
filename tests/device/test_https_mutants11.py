"""lib/fota/https.py, File.open: every response of a download must carry the ETag of the first
one that had one; a response with another ETag (the file changed on the server) is closed and
refused, one without an ETag is not checked, and a file whose first responses had none is held
to the first ETag that comes."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import https
class Response:
    def __init__(self, etag):
        self.etag, self.closed = etag, False
    def close(self):
        self.closed = True
tags = ETAGS
got = []
def get(url, ca, start):
    r = Response(tags[len(got)])
    got.append(r)
    return r
https.get = get
f = https.File("https://h/fw.bin", b"ca")
res = [error(f.open, i * 100) for i in range(len(tags))]
out([res, [r.closed for r in got]])
"""
CHANGED = 'HTTPError: the file changed on the server during the download (ETag "a", now "b")'


@pytest.mark.parametrize("etags,want", cases([
    ("same", [b'"a"', b'"a"', b'"a"'], [["ok", "ok", "ok"], [False, False, False]]),
    ("changed", [b'"a"', b'"a"', b'"b"'], [["ok", "ok", CHANGED], [False, False, True]]),
    ("none-between", [b'"a"', None, b'"a"'], [["ok", "ok", "ok"], [False, False, False]]),
    ("none-first", [None, b'"a"', b'"b"'], [["ok", "ok", CHANGED], [False, False, True]])]))
def test_a_download_is_held_to_the_first_etag_it_got(etags, want):
    assert mp(RUN.replace("ETAGS", repr(etags))) == want
