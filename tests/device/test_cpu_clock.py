"""The CPU clock during an update (core.cpu_fast): 240 MHz for the download, inflating or
patching and the checks, the board's own clock again after, on success and on failure; left
alone when config.json says "cpu_boost": false or the board runs at 240 MHz already. The
emulator records every machine.freq() change with the flash operations before it."""

from __future__ import annotations

import json

from tests.device.rig import ONCE, firmware

# The application reports the clock each time the update reports progress (every 10 % of the
# download) and after the update.
APP = "import machine\n" + ONCE.replace(
    "fota.handle_fota_jobs(jobs, force=True)",
    "fota.on_progress = lambda fid, step, done, size: print('app: clock', step, machine.freq())\n"
    "print('app: reset needed', fota.handle_fota_jobs(jobs, force=True, auto_reset=False))\n"
    "print('app: clock after', machine.freq())")
NEW = firmware("1.0.1", size=300_000)
SECTORS = -(-len(NEW) // 4096)


def clocks(console: str) -> list[str]:
    return [ln.split()[-1] for ln in console.splitlines() if ln.startswith("app: clock")]


def test_update_runs_at_240_mhz_and_puts_the_clock_back(rig):
    r = rig(app=APP)
    job = r.publish(NEW)
    result = r.run(max_boots=1)
    assert "app: reset needed True" in result.console, result.console
    assert r.execution(job).status == "IN_PROGRESS"  # on its way to the trial boot
    assert clocks(result.console) == ["240000000"] * 10 + ["160000000"]
    assert "fota: [download] CPU clock 240 MHz, from 160" in result.console
    (fast, a), (back, b) = result.cpu_clock
    assert (fast, back) == (240, 160)
    assert b - a >= 2 * SECTORS  # every sector's erase and write came between


def test_failed_update_puts_the_clock_back(rig):
    r = rig(app=APP)
    job = r.publish(NEW, bc_crc="0" * 32)
    result = r.run(max_boots=1)
    ex = r.execution(job)
    assert ex.status == "FAILED" and ex.status_details["reason"].startswith("MD5 mismatch"), ex
    assert clocks(result.console)[-1] == "160000000"
    assert [mhz for mhz, _ in result.cpu_clock] == [240, 160]


def test_cpu_boost_false_leaves_the_clock_alone(rig):
    r = rig(app=APP)
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["cpu_boost"] = False
    (r.fs / "config.json").write_text(json.dumps(cfg))
    r.publish(NEW)
    result = r.run(max_boots=1)
    assert "app: reset needed True" in result.console, result.console
    assert clocks(result.console) == ["160000000"] * 11
    assert result.cpu_clock == []


def test_board_at_240_mhz_already_is_left_there(rig):
    r = rig(app="import machine\nmachine.freq(240000000)\n" + APP)
    r.publish(NEW)
    result = r.run(max_boots=1)
    assert "app: reset needed True" in result.console, result.console
    assert clocks(result.console) == ["240000000"] * 11
    assert [mhz for mhz, _ in result.cpu_clock] == [240]  # the application's own
    assert "CPU clock" not in result.console


# machine.freq of an ESP32-C3 or -C6 (ports/esp32/modmachine.c): 160 MHz at most
C3_FREQ = """import machine
_freq = machine.freq
def freq(hz=None):
    if hz is None:
        return _freq()
    if hz // 1000000 not in (20, 40, 80, 160):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz or 160MHz")
    _freq(hz)
machine.freq = freq
"""


def test_chip_that_stops_at_160_mhz_updates_at_160(rig):
    r = rig(app=C3_FREQ + APP)
    r.publish(NEW)
    result = r.run(max_boots=1)
    assert "app: reset needed True" in result.console, result.console
    assert clocks(result.console) == ["160000000"] * 11
    assert result.cpu_clock == []
