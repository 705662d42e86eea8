"""lib/fota/install.py, source: an HTTPS download names the host (and port) it comes from in the
log, not a piece of the path."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import install
logs = []
install.log = lambda step, msg: logs.append([step, msg])
install.File = lambda url, ca, feed: None
class Plan:
    stream = None
    url = URL
try:
    install.source(Plan(), "ca.pem", None)
except AttributeError:  # the stand-in File has no open
    pass
out(logs)
"""


@pytest.mark.parametrize("url,host", cases([
    ("host-and-port", "https://fw.example.com:8443/bucket/fw.bin", "fw.example.com:8443"),
    ("host", "https://h/a/b/c", "h")]))
def test_an_https_download_names_its_host(url, host):
    assert mp(RUN.replace("URL", repr(url))) == [["download", "over HTTPS from " + host]]
