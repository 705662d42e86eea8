"""lib/fota/core.py, feed: what the long steps call between their pieces feeds the watchdog the
package holds, once a call; without a watchdog it does nothing."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
from fota import core
class Wdt:
    fed = 0
    def feed(self):
        Wdt.fed += 1
core.watchdog = None
core.feed()
core.watchdog = Wdt()
core.feed()
core.feed()
out(Wdt.fed)
"""


def test_feed_feeds_the_watchdog_once_a_call():
    assert mp(RUN) == 2
