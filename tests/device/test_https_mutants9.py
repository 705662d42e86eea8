"""lib/fota/https.py, split_url: a URL without a port goes to port 443 (RFC 9110 section
4.2.2), with its host whole."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import https
try:
    out(list(https.split_url(URL)))
except Exception as e:
    out("%s: %s" % (type(e).__name__, e))
"""


@pytest.mark.parametrize("url,want", cases([
    ("no-port", "https://example.com/fw.bin", ["example.com", 443, "/fw.bin"]),
    ("no-port-no-path", "https://example.com", ["example.com", 443, "/"]),
    ("port", "https://example.com:8443/fw.bin", ["example.com", 8443, "/fw.bin"])]))
def test_a_url_without_a_port_goes_to_443(url, want):
    assert mp(RUN.replace("URL", repr(url))) == want
