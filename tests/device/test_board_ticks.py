"""The board's ticks: on the ESP32 port time.ticks_ms() is 30 bits (extmod/modtime.c masks it
with MICROPY_PY_TIME_TICKS_PERIOD - 1, which py/mpconfig.h makes 2**30 on a 32-bit build), so it
wraps after 12.4 days of uptime, and time.ticks_add() refuses a delta of 2**29 or more. The
emulated board has the same ticks (emulator/port/_boardtime.py), and a test can boot it as if
it had been up for days: a whole update then runs across the wrap, and past half the period."""

from __future__ import annotations

import pytest

from tests.device.rig import firmware

PERIOD = 1 << 30
HALF = PERIOD >> 1

TICKS_APP = """
import time
print("ticks at start", time.ticks_ms())
try:
    time.ticks_add(0, %d)
    print("ticks_add inside")
except OverflowError as e:
    print("ticks_add:", e)
try:
    time.ticks_add(0, %d)
    print("ticks_add outside: taken")
except OverflowError as e:
    print("ticks_add outside:", e)
start = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), start) < 300:
    time.sleep_ms(20)
now = time.ticks_ms()
print("ticks after 300 ms", now, time.ticks_diff(now, start))
import machine
if machine.reset_cause() == machine.PWRON_RESET:
    machine.reset()
"""


@pytest.mark.parametrize("sign", [1, -1], ids=["forward", "back"])
def test_ticks_are_30_bits_and_wrap_and_a_reset_starts_them_at_zero(rig, sign):
    r = rig(app=TICKS_APP % (sign * (HALF - 1), sign * HALF))
    result = r.run(max_boots=2, uptime_ms=PERIOD - 150)
    lines = [ln for ln in result.console.splitlines() if ln.startswith(("ticks", "ticks_add"))]
    assert lines[1] == "ticks_add inside" and lines[2] == "ticks_add outside: ticks interval overflow"
    first = int(lines[0].split()[-1])
    assert PERIOD - 150 <= first < PERIOD  # booted as if up for 12.4 days less 150 ms
    after, elapsed = map(int, lines[3].split()[-2:])
    assert after < 10_000 and 300 <= elapsed < 10_000  # wrapped, and ticks_diff saw through it
    # the reset starts the ticks again from 0, as esp_timer does
    assert int(lines[4].split()[-1]) < 10_000


def test_uptime_outside_the_ticks_is_refused(tmp_path):
    from emulator.device import Device

    flash = tmp_path / "flash.bin"
    flash.write_bytes(b"\xff" * 4096)
    for bad in (-1, PERIOD):
        with pytest.raises(ValueError, match="uptime_ms is a ticks_ms value"):
            Device(flash, uptime_ms=bad, echo=None)
    Device(flash, uptime_ms=PERIOD - 1, echo=None).close()


@pytest.mark.parametrize("uptime", [PERIOD - 2_000, HALF + 1, PERIOD - 1],
                         ids=["wrap-during-the-update", "past-half-the-period", "last-tick"])
def test_an_update_on_a_board_up_for_days(rig, uptime):
    r = rig()
    job = r.publish(firmware("1.0.1", size=600_000))
    result = r.run(uptime_ms=uptime)
    assert result.exit_reason == "main-returned", result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1" and r.boot_slot() == "ota_1"
