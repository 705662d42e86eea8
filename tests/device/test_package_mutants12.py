"""lib/fota/__init__.py: the CA an application sets on the package for downloads (fota.https_ca)
is the one the library's steps read (fota.core.https_ca) from the next call of the package on,
and setting it back to None goes back to the config's CA."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
import fota
from fota import core, install
seen = []
def update(*a):
    seen.append(core.https_ca)  # what install.source reads for an HTTPS download
    return "1.2"
install.update = update
fota.https_ca = b"CA of the downloads"
fota.update({"doc": 1})
fota.https_ca = None
fota.update({"doc": 1})
out([None if s is None else s.decode() for s in seen])
"""


def test_the_applications_download_ca_reaches_the_steps():
    assert mp(RUN) == ["CA of the downloads", None]
