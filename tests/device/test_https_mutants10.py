"""lib/fota/https.py, split_url: a URL with no host (nothing before the port or the path), or
with a character outside printable ASCII (a space, CR LF that would add headers, non-ASCII) is
refused before any connection is tried."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

BAD_CHAR = "HTTPError: a space, a control character or non-ASCII in URL"
RUN = """
from fota import https
out(error(https.split_url, URL))
"""


@pytest.mark.parametrize("url,want", cases([
    ("no-host", "https:///fw.bin", "HTTPError: bad host in URL"),
    ("port-no-host", "https://:8443/fw.bin", "HTTPError: bad host in URL"),
    ("space-in-host", "https://ex ample.com/fw.bin", BAD_CHAR),
    ("space-in-path", "https://h/f w.bin", BAD_CHAR),
    ("crlf-in-path", "https://h/fw.bin\r\nX-Injected:1", BAD_CHAR),
    ("char-outside-31", "https://h/f\x1fw.bin", BAD_CHAR),
    ("char-inside-33", "https://h/f!w.bin", "ok"),
    ("char-inside-126", "https://h/f~w.bin", "ok"),
    ("char-outside-127", "https://h/f\x7fw.bin", BAD_CHAR),
    ("non-ascii", "https://h/f\xe9w.bin", BAD_CHAR),
    ("one-letter-host", "https://h/fw.bin", "ok")]))
def test_a_url_without_a_host_is_refused(url, want):
    assert mp(RUN.replace("URL", repr(url))) == want
