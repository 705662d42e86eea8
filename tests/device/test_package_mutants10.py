"""lib/fota/__init__.py: a watchdog the application sets on the package (fota.watchdog) is the
one the library's long steps feed, from the next call of the package on."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
import fota
from fota import core, install
class Wdt:
    fed = 0
    def feed(self):
        Wdt.fed += 1
def update(*a):
    core.feed()  # what a long step does between its pieces
    return "1.2"
install.update = update
fota.watchdog = Wdt()
fota.update({"doc": 1})
out([Wdt.fed, core.watchdog is fota.watchdog])
"""


def test_the_applications_watchdog_is_fed_during_an_update():
    assert mp(RUN) == [1, True]
