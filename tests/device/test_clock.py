"""The board's clock on the emulated ESP32 (2000-01-01 at power-up): the firmware's build time
as a floor, NTP from the stand-in or from a test server, and TLS certificate dates.

The stand-in's server certificate is valid from an hour before the session's cloud started:
firmware built now lets it in on the floor alone; firmware built two days ago does not, and
then needs NTP."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from typing import Callable

import pytest

from emulator.device import Device
from fotatools.cloud.sntp import SntpServer, bind, reply
from tests.device import mpy
from tests.device.rig import ROOT

# prints the board's clock (Unix seconds here: the unix port counts from 1970) once connected
APP = """
import time
import fota
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs

conn = Connection(load_config())
conn.connect()
print("app: clock", int(time.time()))
jobs = Jobs(conn)
if fota.testing():
    from fota import selftest
    ok, why = selftest.run(jobs)
    if not ok:
        fota.reject("self-test failed: " + why)
fota.handle_fota_jobs(jobs, force=True)
print("app: done", fota.version())
"""


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def built(at: dt.datetime, version: str = "1.0.0", size: int = 300_000) -> bytes:
    from emulator.image import build_app_image

    return build_app_image(version, size=size, built=at)


def set_ntp(rig, ntp: str | None) -> None:
    cfg = json.loads((rig.fs / "config.json").read_text())
    if ntp is None:
        cfg.pop("ntp", None)
    else:
        cfg["ntp"] = ntp
    (rig.fs / "config.json").write_text(json.dumps(cfg))


def dead_port() -> int:
    """A UDP port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clock_printed(console: str) -> list[int]:
    return [int(line.split()[2]) for line in console.splitlines() if line.startswith("app: clock ")]


class StubNtp:
    """An SNTP server on 127.0.0.1 whose replies the test shapes."""

    def __init__(self, answer: Callable[[bytes, float, float], bytes | None] = reply) -> None:
        self.answer = answer
        self.on = True
        self.server = SntpServer(bind("127.0.0.1", 0), answer=self._answer).start()

    def _answer(self, request: bytes, received: float, now: float) -> bytes | None:
        return self.answer(request, received, now) if self.on else None

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.server.address[1]

    def close(self) -> None:
        self.server.stop()


@pytest.fixture()
def ntp_server():
    servers: list[StubNtp] = []

    def make(answer=reply) -> StubNtp:
        servers.append(StubNtp(answer))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


# ---- replies that must not be believed -------------------------------------------------------
def _patch(offset: int, data: bytes):
    def answer(request: bytes, received: float, now: float) -> bytes | None:
        out = bytearray(reply(request, received, now) or b"")
        out[offset:offset + len(data)] = data
        return bytes(out)
    return answer


def _at(unix: float):
    return lambda request, received, now: reply(request, unix, unix)


def _short(request, received, now):
    return (reply(request, received, now) or b"")[:40]


FLOOR = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
BAD_REPLIES = {
    "short": (_short, "short reply (40 bytes)"),
    "client mode": (_patch(0, bytes([0x23])), "not a server reply (version 4, mode 3)"),
    "version 2": (_patch(0, bytes([0x14])), "not a server reply (version 2, mode 4)"),
    "kiss of death": (_patch(1, b"\x00"), "kiss-of-death"),
    "unsynchronized": (_patch(0, bytes([0xE4])), "server not synchronized"),
    "stratum 16": (_patch(1, bytes([16])), "server not synchronized"),
    "zero transmit": (_patch(40, bytes(8)), "zero transmit timestamp"),
    "other request": (_patch(24, b"\x01" * 8), "not the answer to this request"),
    "before the build": (_at(FLOOR.timestamp() - 3 * 86400), "is before the firmware was built"),
    "far ahead": (_at(FLOOR.timestamp() + 21 * 365 * 86400),
                  "more than 20 years after the firmware was built"),
}


@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_a_reply_not_to_believe_is_refused(ntp_server, case):
    answer, why = BAD_REPLIES[case]
    server = ntp_server(answer)
    floor = int(FLOOR.timestamp())
    out = mpy.run(f"""
from fota import clock
t = clock.sntp("127.0.0.1", {server.server.address[1]})
try:
    clock.check(t[0], {floor})
    print("believed", t)
except ValueError as e:
    print("refused", e)
""", check=False)
    assert why in out.stdout + out.stderr, out.stdout + out.stderr
    assert "believed" not in out.stdout


def test_a_good_reply_gives_the_server_time(ntp_server):
    server = ntp_server(_at(1_800_000_000.5))
    out = mpy.run_json(f"""
import json
from fota import clock
t = clock.sntp("127.0.0.1", {server.server.address[1]})
clock.check(t[0], {int(FLOOR.timestamp())})
print(json.dumps(t))
""")
    assert out == [1_800_000_000, 500000]


def test_the_2036_rollover_counts_into_the_next_era():
    stamp = 0x00001000  # 2036-02-07 plus 4096 s, in era 1
    out = mpy.run_json(f"""
import struct, json
from fota import clock
req = clock.request()
rep = bytearray(48)
rep[0] = 0x24
rep[1] = 1
rep[24:32] = req[40:48]
struct.pack_into("!II", rep, 40, {stamp}, 0)
print(json.dumps(clock.parse(rep, req)))
""")
    assert out == [0x100000000 + stamp, 0]


def test_the_request_carries_the_clock_past_2036_and_a_nonce():
    # the clock 5 s into NTP era 1 (odd, so a lost low bit shows): the transmit timestamp is
    # its NTP seconds modulo 2**32, which the server echoes back as the originate timestamp
    out = mpy.run_json("""
import json, struct, time
from fota import clock
clock.now = lambda: 0x100000000 + 5 - clock.NTP_DELTA
req = clock.request()
print(json.dumps([len(req), req[0], list(req[1:40]), struct.unpack_from("!II", req, 40)]))
""")
    assert out[:3] == [48, 0x23, [0] * 39]  # LI 0, version 4, mode 3; nothing else set
    assert out[3][0] == 5


def test_ntp_counts_to_the_epoch_of_the_board_or_of_the_unix_port():
    # a board's time.gmtime(0) is 2000-01-01 (MicroPython's ports/esp32: MICROPY_EPOCH_IS_2000):
    # its NTP seconds are 3155673600 more; the unix port counts from 1970 (2208988800 more)
    out = mpy.run_json("""
import json, sys, time
class _T:
    def gmtime(self, t=None):
        return (2000, 1, 1, 0, 0, 0, 5, 1) if t == 0 else time.gmtime(t)
    def __getattr__(self, name):
        return getattr(time, name)
real = time
sys.modules["time"] = _T()
from fota import clock
sys.modules["time"] = real
print(json.dumps([clock.EPOCH, clock.NTP_DELTA]))
""")
    assert out == [2000, 3155673600]
    assert mpy.run_json("import json\nfrom fota import clock\nprint(json.dumps(clock.NTP_DELTA))") == 2208988800


def test_a_transmit_time_with_zero_seconds_is_a_time():
    # only seconds and fraction both zero mean "no time": 0 s and a half is 2036-02-07 06:28:16.5
    out = mpy.run_json("""
import struct, json
from fota import clock
req = clock.request()
rep = bytearray(48)
rep[0] = 0x24
rep[1] = 1
rep[24:32] = req[40:48]
struct.pack_into("!II", rep, 40, 0, 0x80000000)
print(json.dumps(clock.parse(rep, req)))
""")
    assert out == [0x100000000, 500000]


def test_the_build_time_is_read_only_from_an_app_image_header():
    at = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    head = built(at)[:144]
    cases = {"image": head, "short": head[:143], "not an image": b"\xe8" + head[1:],
             "no app descriptor": head[:32] + b"\x33\x54\xcd\xab" + head[36:]}
    out = mpy.run_json(f"""
import json
from fota import clock
cases = {cases!r}
print(json.dumps({{k: clock.build_time(v) for k, v in cases.items()}}))
""")
    unix = int(at.timestamp())
    assert out["image"] == unix  # the unix port counts from 1970 (a board from 2000)
    assert out["short"] == out["not an image"] == out["no app descriptor"] == 0


# a fake RTC for ready() outside the emulator: records what the clock was set to
FAKE_RTC = """
import sys, time
from fota import clock
class _RTC:
    set = []
    def datetime(self, dt=None):
        _RTC.set.append(dt)
class _M:
    RTC = _RTC
sys.modules["machine"] = _M
clock._floor = 0
"""


def test_back_off_between_attempts_and_rare_resyncs(ntp_server):
    silent, good = ntp_server(), ntp_server()
    silent.on = False
    out = mpy.run(FAKE_RTC + f"""
print("r1", clock.ready("{silent.address}"), clock._wait)
print("r2", clock.ready("{silent.address}"), clock._wait)   # within the back-off
clock._due = time.ticks_ms()                                # the back-off is over
print("r3", clock.ready("{silent.address}"), clock._wait)
for i in range(8):                                          # refused at once: no waiting
    clock._due = time.ticks_ms()
    clock.ready("127.0.0.1:{dead_port()}")
print("cap", clock._wait)
clock._due = time.ticks_ms()
print("r4", clock.ready("{good.address}"), clock._wait, len(_RTC.set))
print("r5", clock.ready("{good.address}"), len(_RTC.set))   # synced: asked again in hours
print("due", time.ticks_diff(clock._due, time.ticks_ms()) > 5 * 3600_000)
print("off", clock.ready(""), clock.ready(None))
""")
    lines = out.stdout.splitlines()
    assert [x for x in lines if x.startswith("r")][:2] == ["r1 False 20000", "r2 False 20000"], out.stdout
    assert "no answer in 1 s" in out.stdout
    assert "r3 False 40000" in lines and "cap 600000" in lines
    assert "next try in 10 s" in out.stdout and "next try in 20 s" in out.stdout
    assert silent.server.requests == 2  # r2 sent none
    assert "r4 True 10000 1" in lines and "r5 True 1" in lines and "due True" in lines
    assert good.server.requests == 1
    assert "off True True" in lines  # NTP turned off: the clock stays as NTP left it


@pytest.mark.parametrize("ntp", ["", "host:0", "host:x", ":123", 5])
def test_a_bad_ntp_setting_is_logged_not_fatal(ntp):
    out = mpy.run(FAKE_RTC + f"""
print("ready", clock.ready({ntp!r}))
""")
    assert "ready False" in out.stdout
    if ntp:
        assert "clock: NTP" in out.stdout and "ValueError" in out.stdout


# ---- on the emulated board, against the stand-in ---------------------------------------------
def test_a_cold_board_sets_its_clock_from_the_stand_in_and_connects(rig):
    r = rig(app=APP)
    t0 = time.time()
    result = r.run(max_boots=1)
    t1 = time.time()
    assert "app: done 1.0.0" in result.console, result.console
    assert "clock: earlier than the firmware's build" in result.console  # it started in 2000
    assert "clock: set by NTP " in result.console
    (clock,) = clock_printed(result.console)
    assert t0 - 2 <= clock <= t1 + 2


def test_without_ntp_the_board_connects_on_its_build_time(rig):
    build = now_utc()  # after the server certificate's start
    r = rig(app=APP, image=built(build))
    set_ntp(r, "127.0.0.1:%d" % dead_port())
    t0 = time.time()
    result = r.run(max_boots=1)
    t1 = time.time()
    assert "app: done 1.0.0" in result.console, result.console
    assert "clock: NTP 127.0.0.1:" in result.console
    (clock,) = clock_printed(result.console)
    assert build.timestamp() <= clock <= build.timestamp() + (t1 - t0) + 2


def test_a_certificate_newer_than_the_build_needs_ntp_and_the_log_says_so(rig):
    r = rig(app=APP, image=built(now_utc() - dt.timedelta(days=2)))
    ntp = json.loads((r.fs / "config.json").read_text())["ntp"]
    set_ntp(r, "127.0.0.1:%d" % dead_port())
    refused = r.run(max_boots=1)
    assert refused.exit_reason == "main-raised"
    assert "The certificate validity starts in the future" in refused.console
    assert "clock: the server certificate's dates do not fit the board's clock" in refused.console
    assert "the board needs NTP" in refused.console
    set_ntp(r, ntp)
    again = r.run(max_boots=1)  # a power-up, with the stand-in's NTP
    assert "app: done 1.0.0" in again.console, again.console


def test_a_far_ahead_reply_is_ignored_and_the_floor_holds(rig, ntp_server):
    build = now_utc()
    stub = ntp_server(_at(build.timestamp() + 25 * 365 * 86400))
    r = rig(app=APP, image=built(build))
    set_ntp(r, stub.address)
    result = r.run(max_boots=1)
    assert "more than 20 years after the firmware was built" in result.console
    assert "app: done 1.0.0" in result.console, result.console
    (clock,) = clock_printed(result.console)
    assert build.timestamp() <= clock < build.timestamp() + 86400


def test_the_trial_boot_keeps_the_clock_over_the_reset(rig, ntp_server):
    # NTP answers once (the old firmware's boot) and then never: the reset into the new
    # firmware keeps the clock, so its trial gets through although its build is older than
    # the server's certificate
    old = now_utc() - dt.timedelta(days=2)
    answered = []

    def once(request, received, now):
        if answered:
            return None
        answered.append(now)
        return reply(request, received, now)
    stub = ntp_server(once)
    r = rig(app=APP, image=built(old))
    set_ntp(r, stub.address)
    job = r.publish(built(old, "1.0.1", size=400_000))
    result = r.run(max_boots=3)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert [b.reset_cause_name for b in result.boots] == ["PWRON_RESET", "HARD_RESET"]
    assert "no answer in 1 s" in result.console and "app: done 1.0.1" in result.console
    assert stub.server.requests == 2


def test_a_trial_boot_after_a_power_loss_without_ntp_rolls_back_with_the_reason(rig, ntp_server):
    # the old firmware downloads the update and resets; the power goes before the trial boot,
    # so the new firmware starts cold, below the server certificate, with NTP gone: it cannot
    # connect within trial_s and rolls back; the old firmware reports why once NTP is back
    old = now_utc() - dt.timedelta(days=2)
    stub = ntp_server()
    r = rig(app=(ROOT / "main.py").read_text(), image=built(old))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg.update(ntp=stub.address, trial_s=3, telemetry_s=1)
    (r.fs / "config.json").write_text(json.dumps(cfg))
    job = r.publish(built(old, "1.0.1", size=400_000))
    first = r.run(max_boots=1)
    assert first.boots[0].end == "reset" and "fota: [test]" in first.console, first.console
    stub.on = False
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)  # a power-up
    dev.start(timeout=180)
    try:
        deadline = time.monotonic() + 120
        while "version 1.0.0" not in dev.console and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "version 1.0.0" in dev.console, dev.console  # rolled back
        stub.on = True
        while r.execution(job).status != "FAILED" and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        dev.stop()
        dev.close()
    ex = r.execution(job)
    assert ex.status == "FAILED", dev.console
    reason = ex.status_details["reason"]
    assert reason.startswith("rolled back: no connection to AWS IoT on the trial boot"), reason
    assert "validity starts in the future" in reason
    assert "clock: the server certificate's dates do not fit the board's clock" in dev.console
    assert r.version() == "1.0.0"


def test_ntp_a_little_below_the_floor_is_kept(ntp_server):
    # a build machine east of UTC writes a build time ahead of UTC: NTP's (true) time may be
    # below the floor by hours; once NTP set it, the floor must not push it back up
    good = ntp_server()
    out = mpy.run(FAKE_RTC + f"""
clock._floor = clock.now() + 3600
print("r1", clock.ready("{good.address}"), len(_RTC.set))
print("r2", clock.ready("{good.address}"), len(_RTC.set))
""")
    lines = out.stdout.splitlines()
    assert "r1 True 2" in lines and "r2 True 2" in lines, out.stdout  # floor, then NTP; no more
