"""lib/fota/https.py, split_url: a URL with no host (nothing before the port or the path) or
with a space is refused before any connection is tried."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import https
out(error(https.split_url, URL))
"""


@pytest.mark.parametrize("url,want", cases([
    ("no-host", "https:///fw.bin", "HTTPError: bad host in URL"),
    ("port-no-host", "https://:8443/fw.bin", "HTTPError: bad host in URL"),
    ("space-in-host", "https://ex ample.com/fw.bin", "HTTPError: bad host in URL"),
    ("one-letter-host", "https://h/fw.bin", "ok")]))
def test_a_url_without_a_host_is_refused(url, want):
    assert mp(RUN.replace("URL", repr(url))) == want
