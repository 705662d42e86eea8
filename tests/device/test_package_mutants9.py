"""lib/fota/__init__.py, update: the caller's MQTT connection stays up unless it asks
(disconnect=False by default: fota.install.update says what each argument is)."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
import fota
from fota import install
def update(*a):
    out(list(a[1:3]) + [a[5]])
    return "1.2"
install.update = update
fota.update({"doc": 1})
"""


def test_update_keeps_the_connection_by_default():
    assert mp(RUN) == [None, 0, False]
