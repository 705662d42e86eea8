"""The boot loop: resets, watchdog, power cuts, scripts, the command line."""

from __future__ import annotations

import io
import json
import time

import pytest

from tests.emulator.emuhelpers import EMIT, records, run_cli
from emulator.device import Device
from emulator.flash import Flash, create_flash
from emulator.image import build_app_image


def test_reset_loop_and_clean_end(board):
    result = board.run(EMIT + """
import machine
emit(machine.reset_cause())
if machine.reset_cause() == machine.PWRON_RESET:
    try:
        machine.reset()
    except:              # a bare except cannot keep the board alive
        emit("swallowed")
emit("end")
""")
    assert records(result) == [1, 2, "end"]
    assert result.exit_reason == "main-returned" and result.exit_code == 0
    assert [b.reset_cause_name for b in result.boots] == ["PWRON_RESET", "HARD_RESET"]
    assert [b.end for b in result.boots] == ["reset", "main-returned"]
    assert all(b.slot == "ota_0" and b.version == "v1.0.0" for b in result.boots)
    assert "rst:0xc (SW_CPU_RESET)" in result.console
    assert "I (37) boot: Loaded app from partition at offset 0x10000" in result.console


def test_exception_in_main_prints_a_repl_traceback(board):
    result = board.run("x = 1\n\ndef f():\n    raise ValueError('boom')\n\nf()\n")
    assert result.exit_reason == "main-raised" and result.exit_code == 1
    console = result.console
    tb = console[console.index("Traceback"):].splitlines()
    assert tb[:4] == ['Traceback (most recent call last):',
                      '  File "main.py", line 6, in <module>',
                      '  File "main.py", line 4, in f',
                      'ValueError: boom']


def test_frozen_boot_py_that_raises(tmp_path):
    image = build_app_image("v3", payload={
        "_boot.py": "import vfs\nfrom flashbdev import bdev\nvfs.mount(bdev, '/')\n"
                    "print('frozen _boot')\nraise OSError(19)\n",
        "helper.py": "NAME = 'frozen helper'\n"})
    flash = create_flash(tmp_path / "flash.bin", image)
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "boot.py").write_text("print('boot.py')\n")
    (fs / "main.py").write_text("import helper, sys\nprint(helper.NAME, sys.path)\n")
    result = Device(flash, fs, echo=None).run(timeout=30)
    lines = result.console.splitlines()
    start = lines.index("frozen _boot")
    assert lines[start + 1:start + 5] == ["Traceback (most recent call last):",
                                          '  File "_boot.py", line 5, in <module>',
                                          "OSError: [Errno 19] ENODEV", "boot.py"]
    assert "frozen helper ['', '.frozen', '/.frozen', '/lib']" in lines
    assert result.exit_reason == "main-returned"


def test_boot_py_exception_skips_main(board):
    board.write("boot.py", "print('boot')\nraise RuntimeError('bad boot')\n")
    result = board.run("print('main ran')\n")
    assert "RuntimeError: bad boot" in result.console
    assert "main ran" not in result.console
    assert result.exit_reason == "main-raised"


def test_device_filesystem_is_mounted_at_root(board):
    board.write("lib/mylib.py", "def hello():\n    return 'from /lib'\n")
    board.write("certs/ca.der", "CA")
    result = board.run(EMIT + """
import os, mylib
emit([os.getcwd(), sorted(os.listdir('/')), mylib.hello(), open('/certs/ca.der').read()])
with open('/state.txt', 'w') as f:
    f.write('kept')
""")
    # boot.py: the default one of a fresh filesystem (inisetup)
    assert records(result) == [["/", [".frozen", "boot.py", "certs", "lib", "main.py"],
                                "from /lib", "CA"]]
    assert Flash(board.flash).read_file("state.txt") == b"kept"
    assert not (board.fs / "state.txt").exists()  # the device folder is only copied in


def test_soft_reset_skips_the_bootloader(board):
    result = board.run(EMIT + """
import machine, sys
emit(machine.reset_cause())
if machine.reset_cause() == machine.PWRON_RESET:
    sys.exit()
if machine.reset_cause() == machine.SOFT_RESET and len(open('n').read() if 'n' in __import__('os').listdir() else '') < 1:
    open('n', 'w').write('1')
    machine.soft_reset()
""")
    assert records(result) == [1, 5, 5]
    assert result.console.count("MPY: soft reboot") == 2
    assert result.console.count("rst:") == 1  # one bootloader pass only


def test_watchdog_resets_a_hung_board(board):
    result = board.run(EMIT + """
import machine, time
emit(machine.reset_cause())
if machine.reset_cause() == machine.PWRON_RESET:
    wdt = machine.WDT(timeout=300)
    wdt.feed()
    try:
        while True:
            time.sleep_ms(50)
    except:
        emit("swallowed")
""", wdt_grace=0.2)
    assert records(result) == [1, 3]
    assert [b.end for b in result.boots] == ["wdt", "main-returned"]
    assert "task_wdt: Task watchdog got triggered" in result.console
    assert result.boots[1].reset_cause_name == "WDT_RESET"


@pytest.mark.parametrize("feed, model, expect", [
    (False, True, [1, 3]),   # 384 x 45 ms of erases without a feed trips a 4 s watchdog
    (True, True, [1, "erased"]),
    (False, False, [1, "erased"]),  # without the timing model only wall-clock time counts
])
def test_watchdog_counts_modelled_flash_time(board, feed, model, expect):
    result = board.run(EMIT + f"""
import machine, esp32
emit(machine.reset_cause())
if machine.reset_cause() == machine.PWRON_RESET:
    wdt = machine.WDT(timeout=4000)
    p = esp32.Partition("ota_1")
    for i in range(p.ioctl(4, 0)):
        p.ioctl(6, i)
        if {feed}:
            wdt.feed()
    emit("erased")
""", wdt_grace=30, wdt_model=model)
    assert records(result) == expect


def test_power_cut_leaves_a_partial_sector(board):
    board.write("main.py", EMIT + """
import esp32, machine
emit(machine.reset_cause())
p = esp32.Partition("ota_1")
if machine.reset_cause() == machine.PWRON_RESET and 'x' not in __import__('os').listdir():
    open('x', 'w').close()                # a marker file: flash operations too
    p.writeblocks(2, b"\\x11" * 4096)     # op: erase, op: write
    p.writeblocks(2, b"\\x22" * 4096)     # op: erase (cut here), op: write
    emit("not reached")
""")
    counted = board.run(max_boots=1)
    ops_first = counted.flash_stats["ops"]
    create_flash(board.flash, build_app_image("v1.0.0", payload={"fwinfo.py": "VERSION = 'v1.0.0'\n"}))
    # ops: 2 by the bootloader ("set actual ota_seq"), the marker file, erase/write/erase/write
    cut = ops_first - 1
    result = board.run(cut_at=cut, max_boots=3)
    assert records(result) == [1, 1]
    assert [b.end for b in result.boots] == ["power-cut", "main-returned"]
    sector = Flash(board.flash).read(0x190000 + 2 * 4096, 4096)
    assert sector[:2048] == b"\xff" * 2048 and sector[2048:] == b"\x11" * 2048
    assert result.flash_stats["cuts"] == 1
    assert f"power cut during flash operation {cut}" in result.console


def test_power_cut_during_a_write(board):
    board.write("main.py", """
import esp32, os
if 'x' not in os.listdir():
    open('x', 'w').close()
    esp32.Partition("ota_1").writeblocks(0, bytes(range(256)) * 16)
""")
    ops = board.run(max_boots=1).flash_stats["ops"]
    create_flash(board.flash, build_app_image("v1.0.0"))
    result = board.run(cut_at=ops, max_boots=3)  # ..., erase, write (cut)
    assert [b.end for b in result.boots] == ["power-cut", "main-returned"]
    sector = Flash(board.flash).read(0x190000, 4096)
    assert sector[:2048] == (bytes(range(256)) * 8) and sector[2048:] == b"\xff" * 2048


UPDATE_MAIN = EMIT + """
import esp32, machine, os, fwinfo
P = esp32.Partition
emit([fwinfo.VERSION, machine.reset_cause()])
if fwinfo.VERSION == "v2":
    P.mark_app_valid_cancel_rollback()
elif "updated" not in os.listdir():
    nxt = P(P.RUNNING).get_next_update()
    flash_file(nxt, "new.bin")
    nxt.set_boot()
    open("updated", "w").close()
    machine.reset()
emit("done")
"""


def test_power_cut_sweep_over_an_update(tmp_path):
    """Cut the power at every flash operation of an update (image write, set_boot, the
    bootloader's trial-boot mark, the confirmation): the board always comes back up running
    a valid image, v1 or v2, and never boots a half-written one."""
    v1 = build_app_image("v1", payload={"fwinfo.py": "VERSION = 'v1'\n"})
    v2 = build_app_image("v2", payload={"fwinfo.py": "VERSION = 'v2'\n"}, size=6000)

    def fresh(name):
        root = tmp_path / name
        fs = root / "fs"
        fs.mkdir(parents=True)
        (fs / "new.bin").write_bytes(v2)
        (fs / "main.py").write_text(UPDATE_MAIN)
        return create_flash(root / "flash.bin", v1), fs, root / "state"

    flash, fs, state = fresh("count")
    clean = Device(flash, fs, state_dir=state, echo=None).run(max_boots=4, timeout=60)
    assert records(clean)[-1] == "done" and records(clean)[-2] == ["v2", 2]
    total = clean.flash_stats["ops"]
    # 2 (first boot otadata) + 2 x (erase, write) image + 2 set_boot + 2 the marker file
    # "updated" (a littlefs commit: erase, write) + 2 trial + 2 confirm
    assert total == 14
    outcomes = {}
    for cut in range(1, total + 1):
        flash, fs, state = fresh(f"cut{cut}")
        result = Device(flash, fs, state_dir=state, echo=None).run(max_boots=6, cut_at=cut,
                                                                   timeout=60)
        assert result.flash_stats["cuts"] == 1, cut
        assert result.exit_reason == "main-returned", (cut, result.console)
        assert "power-cut" in [b.end for b in result.boots], cut
        final = Flash(flash)
        slot = final.boot_slot()
        final.verify_slot(slot, bootloader=True)
        running = records(result)[-2][0]
        assert running in ("v1", "v2"), cut
        outcomes[cut] = running
    # ops 1-6 (first-boot otadata, image): the marker file is not written yet, so the next
    # boot of v1 redoes the update and v2 ends up confirmed; ops 7-10 (set_boot, the marker
    # file): the next boot is v2's trial, which confirms. Ops 11-14 (the bootloader's
    # PENDING_VERIFY rewrite, the confirmation) leave otadata[1] half erased or half
    # written: its CRC fails and v1 boots again, as on a board.
    assert outcomes == {cut: "v2" if cut <= 10 else "v1" for cut in range(1, total + 1)}


def test_rtc_memory_and_deepsleep(board):
    result = board.run(EMIT + """
import machine
rtc = machine.RTC()
cause = machine.reset_cause()
emit([cause, rtc.memory()])
if cause == machine.PWRON_RESET:
    rtc.memory(b"kept")
    machine.reset()
if cause == machine.HARD_RESET:
    machine.deepsleep(50)
emit(machine.wake_reason())
""")
    assert records(result) == [[1, ""], [2, "kept"], [4, "kept"], 4]
    assert "deep sleep for 50 ms" in result.console
    forever = board.run("import machine\nmachine.deepsleep()\n")
    assert forever.exit_reason == "asleep" and forever.exit_code == 7


def test_max_boots_and_timeout(board):
    looping = board.run("import machine\nmachine.reset()\n", max_boots=3)
    assert looping.exit_reason == "max-boots" and looping.boot_count == 3
    hanging = board.run("import time\nwhile True:\n    time.sleep(0.05)\n", timeout=1.0)
    assert hanging.exit_reason == "timeout" and hanging.exit_code == 3


def test_no_bootable_app(tmp_path):
    image = bytearray(build_app_image("v1"))
    image[-1] ^= 1
    flash = create_flash(tmp_path / "flash.bin", bytes(image))
    (tmp_path / "fs").mkdir()
    result = Device(flash, tmp_path / "fs", echo=None).run(timeout=30)
    assert result.exit_reason == "no-bootable-app" and result.exit_code == 4
    assert "Image hash failed" in result.console


def test_background_run_streams_and_stops(board):
    board.write("main.py", "import time\nprint('up')\nwhile True:\n    time.sleep(0.05)\n")
    stream = io.StringIO()
    dev = Device(board.flash, board.fs, echo=stream)
    dev.start(timeout=60)
    deadline = time.monotonic() + 20
    while "up\n" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "up\n" in stream.getvalue() and dev.running
    result = dev.stop()
    assert result.exit_reason == "stopped" and not dev.running
    assert "[emu] boot 1: PWRON_RESET" in stream.getvalue()
    dev.close()


def test_machine_and_network_basics(board):
    result = board.run(EMIT + """
import machine, network
emit([machine.unique_id().hex(), machine.freq()])
machine.freq(240000000)
emit(machine.freq())
emit(err(machine.freq, 123))
emit(err(machine.WDT, 1, 1000))
emit(err(machine.WDT, 0, 0))
w = network.WLAN(network.STA_IF)
emit(err(w.connect, "ssid", "key"))
w.active(True)
w.connect("ssid", "key")
emit([w.isconnected(), w.ifconfig()[0], w.config("mac").hex()])
led = machine.Pin(2, machine.Pin.OUT, value=0)
led.on()
emit([led.value(), machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP).value()])
emit(err(machine.Pin, 24))
emit(err(machine.Pin, 35, machine.Pin.OUT))
""")
    r = records(result)
    assert r[0] == ["a4cf12000001", 160000000]
    assert r[1] == 240000000
    assert r[2][0] == "ValueError"
    assert r[3] == ["ValueError"] and r[4] == ["ValueError", "WDT timeout too short"]
    assert r[5][0] == "OSError"
    assert r[6] == [True, "127.0.0.1", "a4cf12000001"]
    assert r[7] == [1, 1]
    assert r[8] == ["ValueError", "invalid pin"] and r[9][0] == "ValueError"


def test_cpu_clock_as_a_board_has_it(board):
    # ports/esp32/modmachine.c: 20, 40, 80, 160 or 240 MHz, anything else ValueError; the
    # boot default (160 MHz) after every reset but a soft one; each change recorded with the
    # number of flash operations before it.
    result = board.run(EMIT + """
import machine, esp32
cause = machine.reset_cause()
emit([cause, machine.freq()])
if cause == machine.PWRON_RESET:
    emit([err(machine.freq, hz) for hz in (10000000, 100000000, 239999999 + 2000000, 123)])
    emit(err(machine.freq, 240e6))
    for mhz in (20, 40, 80, 160, 240):
        machine.freq(mhz * 1000000)
        emit(machine.freq())
    esp32.Partition("ota_1").writeblocks(0, bytes(4096))  # a flash erase and write
    machine.freq(80000000)
    machine.soft_reset()
elif cause == machine.SOFT_RESET:
    machine.reset()
""", max_boots=3)
    r = records(result)
    msg = "frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz"
    assert r[0] == [1, 160000000]
    assert r[1] == [["ValueError", msg]] * 4
    assert r[2][0] == "TypeError"
    assert r[3:8] == [20000000, 40000000, 80000000, 160000000, 240000000]
    assert r[8] == [5, 80000000]  # kept over the soft reset
    assert r[9] == [2, 160000000]  # back to the default after machine.reset()
    ops = result.cpu_clock[0][1]
    assert result.cpu_clock == [(20, ops), (40, ops), (80, ops), (160, ops), (240, ops), (80, ops + 2)]


def test_command_line(tmp_path):
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    (frozen / "fwinfo.py").write_text("VERSION = 'cli'\n")
    app = tmp_path / "app.bin"
    proc = run_cli("mkimage", "--version", "v7.7.7", "--payload-dir", str(frozen),
                   "--size", "100k", "-o", str(app))
    assert proc.returncode == 0, proc.stderr
    assert 100 * 1024 <= app.stat().st_size <= 100 * 1024 + 16
    flash = tmp_path / "flash.bin"
    assert run_cli("mkflash", str(flash), "--app", str(app)).returncode == 0
    info = json.loads(run_cli("info", str(flash), "--json").stdout)
    assert info["slots"]["ota_0"]["app_desc"]["version"] == "v7.7.7"
    assert info["boot_slot"] == "ota_0"
    assert [p["label"] for p in info["partitions"]][-1] == "vfs"
    text = run_cli("info", str(flash)).stdout
    assert "ota_0  micropython v7.7.7: valid" in text
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("import fwinfo\nprint('running', fwinfo.VERSION)\nraise KeyError(1)\n")
    run = run_cli("run", "--flash", str(flash), "--fs", str(fs), "--json", "--timeout", "30")
    assert run.returncode == 1
    assert "running cli" in run.stdout and "KeyError: 1" in run.stdout
    summary = json.loads(run.stdout[run.stdout.index("{\n"):])
    assert summary["exit_reason"] == "main-raised" and summary["boots"][0]["slot"] == "ota_0"
    bad = run_cli("mkflash", str(flash), "--app", str(frozen / "fwinfo.py"))
    assert bad.returncode != 0 and "not an ESP app image" in bad.stderr
    missing = run_cli("run", "--flash", str(tmp_path / "nope.bin"), "--fs", str(fs))
    assert missing.returncode == 64 and "not found" in missing.stderr
    for bad in (["--cut-at", "0"], ["--heapsize", "lots"], ["--max-boots", "-1"]):
        proc = run_cli("run", "--flash", str(flash), "--fs", str(fs), *bad)
        assert proc.returncode == 64 and proc.stderr.startswith("error: "), bad
