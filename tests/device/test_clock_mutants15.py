"""lib/fota/clock.py, attempt: a time source that does not answer in time is said to give "no
answer in 1 s", whichever number the port gives the timeout: EAGAIN (11), ETIMEDOUT as Linux
numbers it (110: the unix port, the emulator) and as the ESP32's newlib numbers it (116:
sys/errno.h, which MicroPython's ESP32 port uses for its MP_E* codes). Any other error is shown
as it came, e.g. 115 (EINPROGRESS on Linux, ENETDOWN in newlib)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import CLOCK, cases, mp

RUN = CLOCK + """
said = []
clock.print = lambda *a: said.append(" ".join(str(x) for x in a))
def fails(host, port):
    raise OSError(ERRNO)
clock.sntp = fails
clock.attempt(["a"], FL)
out([s for s in said if s.startswith("clock: NTP a:")] + [clock.synced])
"""


@pytest.mark.parametrize("errno,why", cases([
    ("eagain-11", 11, "no answer in 1 s"),
    ("linux-etimedout-110", 110, "no answer in 1 s"),
    ("esp32-etimedout-116", 116, "no answer in 1 s"),
    ("another-error-115", 115, "OSError(115,)")]))
def test_a_source_that_times_out_gives_no_answer_whatever_the_ports_errno(errno, why):
    assert mp(RUN.replace("ERRNO", str(errno))) == ["clock: NTP a: " + why, 0]
