"""The board's clock on the emulated ESP32 (2000-01-01 at power-up): the firmware's build time
as a floor, time sources that must agree (or get through TLS), servers that lie, and TLS
certificate dates.

The stand-in's server certificate is valid from an hour before the session's cloud started:
firmware built now lets it in on the floor alone; firmware built two days ago does not, and
then needs an honest time source."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest

from emulator.device import Device
from fotatools.cloud.sntp import reply
from tests.device import mpy
from tests.device.ntp import HOUR, LIARS, YEAR, StubNtp, at, kiss, patched, shifted, short
from tests.device.rig import ROOT
from tests.reliability.board import Running

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


def built(at_: dt.datetime, version: str = "1.0.0", size: int = 300_000) -> bytes:
    from emulator.image import build_app_image

    return build_app_image(version, size=size, built=at_)


def set_config(rig, **kw) -> None:
    cfg = json.loads((rig.fs / "config.json").read_text())
    for k, v in kw.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (rig.fs / "config.json").write_text(json.dumps(cfg))


def set_ntp(rig, ntp) -> None:
    set_config(rig, ntp=ntp)


def stand_in_ntp(rig) -> str:
    return json.loads((rig.fs / "config.json").read_text())["ntp"]


def dead_port() -> int:
    """A UDP port on 127.0.0.1 where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clock_printed(console: str) -> list[int]:
    return [int(line.split()[2]) for line in console.splitlines() if line.startswith("app: clock ")]


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
FLOOR = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
BAD_REPLIES = {
    "short": (short, "short reply (40 bytes)"),
    "client mode": (patched(0, bytes([0x23])), "not a server reply (version 4, mode 3)"),
    "broadcast mode": (patched(0, bytes([0x25])), "not a server reply (version 4, mode 5)"),
    "version 2": (patched(0, bytes([0x14])), "not a server reply (version 2, mode 4)"),
    "kiss of death": (patched(1, b"\x00"), "kiss-of-death LOCL"),
    "kiss of death RATE": (kiss(b"RATE"), "kiss-of-death RATE"),
    "kiss of death DENY": (kiss(b"DENY"), "kiss-of-death DENY"),
    "kiss of death, unprintable code": (kiss(b"\x00\xffAB"), "kiss-of-death ??AB"),
    "unsynchronized": (patched(0, bytes([0xE4])), "server not synchronized"),
    "stratum 16": (patched(1, bytes([16])), "server not synchronized"),
    "zero transmit": (patched(40, bytes(8)), "zero transmit timestamp"),
    "other request": (patched(24, b"\x01" * 8), "not the answer to this request"),
    "kiss of death for another request": (patched(24, b"\x01" * 8, kiss(b"DENY")),
                                          "not the answer to this request"),
    "before the build": (at(FLOOR.timestamp() - 3 * 86400), "is before the firmware was built"),
    "far ahead": (at(FLOOR.timestamp() + 21 * 365 * 86400),
                  "more than 20 years after the firmware was built"),
}


@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_a_reply_not_to_believe_is_refused(ntp_server, case):
    answer, why = BAD_REPLIES[case]
    server = ntp_server(answer)
    floor = int(FLOOR.timestamp())
    out = mpy.run(f"""
from fota import clock
try:
    t = clock.sntp("127.0.0.1", {server.port})
    clock.check(t[0], {floor})
    print("believed", t)
except ValueError as e:
    print("refused", e)
""", check=False)
    assert "refused " in out.stdout and why in out.stdout, out.stdout + out.stderr
    assert "believed" not in out.stdout


@pytest.mark.parametrize("name,t,ok", [
    ("a day before the floor, just inside", FLOOR.timestamp() - 86400 + 60, True),
    ("a day before the floor, just outside", FLOOR.timestamp() - 86400 - 60, False),
    ("20 years after the floor, just inside", FLOOR.timestamp() + 7305 * 86400 - 60, True),
    ("20 years after the floor, just outside", FLOOR.timestamp() + 7305 * 86400 + 60, False),
])
def test_the_window_around_the_floor_on_both_sides(ntp_server, name, t, ok):
    server = ntp_server(at(t))
    out = mpy.run(f"""
from fota import clock
t = clock.sntp("127.0.0.1", {server.port})
try:
    clock.check(t[0], {int(FLOOR.timestamp())})
    print("believed", t[0])
except ValueError as e:
    print("refused", e)
""")
    assert ("believed %d" % int(t) in out.stdout) is ok, out.stdout


def test_a_good_reply_gives_the_server_time(ntp_server):
    server = ntp_server(at(1_800_000_000.5))
    out = mpy.run_json(f"""
import json
from fota import clock
t = clock.sntp("127.0.0.1", {server.port})
clock.check(t[0], {int(FLOOR.timestamp())})
print(json.dumps(t[:2]))
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


# ---- several sources: agreement, trial by TLS, back to the floor -----------------------------
# a fake RTC for ready() outside the emulator: records what the clock was set to (the process
# clock does not move); last() is the last time set, in epoch seconds
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
def last():
    d = _RTC.set[-1]
    return clock.seconds(d[0], d[1], d[2], d[4], d[5], d[6])
def due():
    clock._due = time.ticks_ms()
FUTURE = ValueError("The certificate validity starts in the future")
EXPIRED = ValueError("The certificate validity has expired")
"""


def lines_of(out) -> list[str]:
    return out.stdout.splitlines()


@pytest.mark.parametrize("apart,agree", [(55, True), (65, False), (-55, True), (-65, False)])
def test_two_servers_agree_within_a_minute(ntp_server, apart, agree):
    a, b = ntp_server(), ntp_server(shifted(apart))
    out = mpy.run(FAKE_RTC + f"""
print("synced", clock.ready(["{a.address}", "{b.address}"]))
print("set", len(_RTC.set), clock._on)
print("off", last() - int(time.time()))
""")
    lines = lines_of(out)
    if agree:
        assert "synced 2" in lines and "set 1 None" in lines, out.stdout
        assert "which agree" in out.stdout
    else:  # none agree: the lowest time goes on trial
        lowest = a if apart > 0 else b
        assert "synced 0" in lines and f"set 1 {lowest.address}" in lines, out.stdout
        assert "no two of 2 time sources agree (2 answered)" in out.stdout
    (off,) = [int(x.split()[1]) for x in lines if x.startswith("off ")]
    expected = apart if agree else min(0, apart)  # agreeing: the later reply's time
    assert abs(off - expected) <= 2, out.stdout


def test_one_server_named_twice_is_one_source(ntp_server):
    liar = ntp_server(shifted(YEAR))
    out = mpy.run(FAKE_RTC + f"""
print("synced", clock.ready(["{liar.address}", "{liar.address}"]), clock._on)
""")
    assert f"synced 0 {liar.address}" in lines_of(out), out.stdout  # on trial, not believed
    assert liar.requests == 2


def test_one_liar_among_honest_servers_is_outvoted(ntp_server):
    honest, liar, other = ntp_server(), ntp_server(shifted(YEAR)), ntp_server()
    out = mpy.run(FAKE_RTC + f"""
print("synced", clock.ready(["{liar.address}", "{honest.address}", "{other.address}"]))
print("off", last() - int(time.time()))
""")
    assert "synced 2" in lines_of(out), out.stdout
    assert f"set by NTP {honest.address} and {other.address}, which agree" in out.stdout
    (off,) = [int(x.split()[1]) for x in lines_of(out) if x.startswith("off ")]
    assert abs(off) <= 2


def test_a_believed_clock_is_not_moved_by_a_lone_or_disagreeing_reply(ntp_server):
    a, b, liar = ntp_server(), ntp_server(), ntp_server(shifted(YEAR))
    out = mpy.run(FAKE_RTC + f"""
print("r1", clock.ready(["{a.address}", "{b.address}"]), len(_RTC.set))
due()
print("r2", clock.ready(["{liar.address}"]), len(_RTC.set), clock._on)
due()
print("r3", clock.ready(["{liar.address}", "{a.address}"]), len(_RTC.set), clock._on)
""")
    lines = lines_of(out)
    assert "r1 2 1" in lines and "r2 2 1 None" in lines and "r3 2 1 None" in lines, out.stdout
    assert liar.requests == 2


def test_times_on_trial_lowest_first_then_the_floor(ntp_server):
    # none agree: the lowest goes on trial; a "not yet valid" refusal takes the next higher,
    # an "expired" one drops the rest and goes back to the floor, which lies below
    ahead1, honest, ahead2 = ntp_server(shifted(YEAR)), ntp_server(), ntp_server(shifted(2 * YEAR))
    out = mpy.run(FAKE_RTC + f"""
clock._floor = int(time.time()) - 1000
print("r", clock.ready(["{ahead1.address}", "{honest.address}", "{ahead2.address}"]), clock._on, last() - int(time.time()))
print("h1", clock.hint(FUTURE), clock._on, last() - int(time.time()))
print("h2", clock.hint(EXPIRED), clock._on, last() - clock._floor, len(clock._trial))
print("h3", clock.hint(OSError(104)), len(_RTC.set))
""")
    lines = lines_of(out)
    r = [x.split() for x in lines if x[:2] in ("r ", "h1", "h2", "h3")]
    assert r[0][:3] == ["r", "0", honest.address] and abs(int(r[0][3])) <= 2, out.stdout
    assert r[1][:3] == ["h1", "True", ahead1.address] and abs(int(r[1][3]) - YEAR) <= 2, out.stdout
    assert r[2] == ["h2", "True", "None", "0", "0"], out.stdout  # ahead2 was never tried
    assert r[3] == ["h3", "False", "3"], out.stdout  # not a date refusal: nothing moves
    assert "back to the firmware's build time" in out.stdout


@pytest.mark.parametrize("refusal,floor_off,moves", [
    ("EXPIRED", -62, True),   # the clock is ahead of the floor by more than a minute: back
    ("EXPIRED", -58, False),  # already about there
    ("EXPIRED", 1000, False),  # the floor is later still: no help there
    ("FUTURE", 62, True),     # the clock is behind the floor (a time on trial below it)
    ("FUTURE", 58, False),
    ("FUTURE", -1000, False),  # the floor is earlier still
])
def test_a_date_refusal_goes_back_to_the_floor_only_where_it_helps(refusal, floor_off, moves):
    out = mpy.run(FAKE_RTC + f"""
clock._floor = int(time.time()) + {floor_off}
print("moved", clock.hint({refusal}), len(_RTC.set))
""")
    assert f"moved {moves} {int(moves)}" in lines_of(out), out.stdout


def test_tls_confirms_a_time_on_trial(ntp_server):
    honest = ntp_server()
    out = mpy.run(FAKE_RTC + f"""
clock.tls_ok()
print("floor", clock.synced)                               # nothing on trial: nothing confirmed
print("r", clock.ready(["{honest.address}"]), clock._on)   # a sole source: on trial
clock.tls_ok()
print("ok", clock.synced, clock._on, time.ticks_diff(clock._due, time.ticks_ms()) > 5 * 3600_000)
""")
    lines = lines_of(out)
    assert "floor 0" in lines and f"r 0 {honest.address}" in lines, out.stdout
    assert "ok 1 None True" in lines, out.stdout
    assert "let TLS through" in out.stdout


def test_a_date_refusal_of_a_believed_clock_asks_at_once(ntp_server):
    a, b = ntp_server(), ntp_server()
    srcs = f'["{a.address}", "{b.address}"]'
    out = mpy.run(FAKE_RTC + f"""
clock._floor = int(time.time()) - 1000
print("r1", clock.ready({srcs}))
clock.hint(EXPIRED)                          # believed, yet refused: ask again at once
print("due", clock._due, clock.synced)
print("r2", clock.ready({srcs}))
clock.synced = 0
due()
clock.ready(["{a.address}"])                 # one source, on trial: the back-off runs
was = clock._due
clock.hint(FUTURE)                           # not believed: the back-off stands
print("kept", clock._due == was, was is not None)
""")
    lines = lines_of(out)
    assert "r1 2" in lines and "due None 0" in lines and "r2 2" in lines, out.stdout
    assert "kept True True" in lines, out.stdout
    assert a.requests == 3 and b.requests == 2


def test_back_off_between_attempts_up_to_a_minute_and_rare_resyncs(ntp_server):
    silent, good, other = ntp_server(), ntp_server(), ntp_server()
    silent.on = False
    srcs = f'["{good.address}", "{other.address}"]'
    out = mpy.run(FAKE_RTC + f"""
print("r1", clock.ready("{silent.address}"), clock._wait)
print("r2", clock.ready("{silent.address}"), clock._wait)   # within the back-off
due()                                                       # the back-off is over
print("r3", clock.ready("{silent.address}"), clock._wait)
for i in range(8):                                          # refused at once: no waiting
    due()
    clock.ready("127.0.0.1:{dead_port()}")
print("cap", clock._wait, time.ticks_diff(clock._due, time.ticks_ms()) <= 60_000)
due()
print("r4", clock.ready({srcs}), clock._wait, len(_RTC.set))
print("r5", clock.ready({srcs}), len(_RTC.set))   # believed: asked again in hours
print("due", time.ticks_diff(clock._due, time.ticks_ms()) > 5 * 3600_000)
print("off", clock.ready(""), clock.ready([]), clock.ready(None))
""")
    lines = lines_of(out)
    assert [x for x in lines if x.startswith("r")][:2] == ["r1 0 20000", "r2 0 20000"], out.stdout
    assert "no answer in 1 s" in out.stdout
    assert "r3 0 40000" in lines and "cap 60000 True" in lines
    assert "next try in 10 s" in out.stdout and "next try in 20 s" in out.stdout
    assert silent.requests == 2  # r2 sent none
    assert "r4 2 10000 1" in lines and "r5 2 1" in lines and "due True" in lines
    assert good.requests == 1 and other.requests == 1
    assert "off 2 2 2" in lines  # NTP turned off: the clock stays as NTP left it


@pytest.mark.parametrize("code,asked_again", [(b"DENY", False), (b"RSTR", False), (b"RATE", True)])
def test_a_kiss_of_death_deny_stops_the_asking(ntp_server, code, asked_again):
    kod, honest = ntp_server(kiss(code)), ntp_server()
    srcs = f'["{kod.address}", "{honest.address}"]'
    out = mpy.run(FAKE_RTC + f"""
clock.ready({srcs})
due()
clock.ready({srcs})
print("denied", clock._denied)
""")
    assert kod.requests == (2 if asked_again else 1), out.stdout
    assert honest.requests == 2
    assert ("not asked again" in out.stdout) is not asked_again


def test_the_watchdog_is_fed_before_each_source(ntp_server):
    silent, a, b = ntp_server(), ntp_server(), ntp_server()
    silent.on = False
    out = mpy.run(FAKE_RTC + f"""
fed = []
print("r", clock.ready(["{silent.address}", "{a.address}", "{b.address}"], lambda: fed.append(1)), len(fed))
""")
    assert "r 2 3" in lines_of(out), out.stdout


@pytest.mark.parametrize("ntp,why", [
    ("host:0", "clock: NTP host:0: ValueError"),
    ("host:x", "clock: NTP host:x: ValueError"),
    (":123", "clock: NTP :123: ValueError"),
    (["ok", 5], "clock: cannot set the clock: ValueError"),
    (5, "clock: cannot set the clock: ValueError"),
    ({"a": 1}, "clock: cannot set the clock: ValueError"),
])
def test_a_bad_ntp_setting_is_logged_not_fatal(ntp, why):
    out = mpy.run(FAKE_RTC + f"""
print("ready", clock.ready({ntp!r}))
""")
    assert "ready 0" in out.stdout and why in out.stdout, out.stdout


def test_ntp_a_little_below_the_floor_is_kept(ntp_server):
    # a build machine east of UTC writes a build time ahead of UTC: NTP's (true) time may be
    # below the floor by hours; once NTP set it, the floor must not push it back up
    good = ntp_server()
    out = mpy.run(FAKE_RTC + f"""
clock._floor = clock.now() + 3600
print("r1", clock.ready("{good.address}"), len(_RTC.set))
print("r2", clock.ready("{good.address}"), len(_RTC.set))
clock.tls_ok()
print("r3", clock.ready("{good.address}"), len(_RTC.set))
""")
    lines = lines_of(out)
    assert "r1 0 2" in lines and "r2 0 2" in lines and "r3 1 2" in lines, out.stdout  # floor, then NTP


# ---- on the emulated board, against the stand-in ---------------------------------------------
def test_a_cold_board_sets_its_clock_from_the_stand_in_and_connects(rig):
    r = rig(app=APP)
    t0 = time.time()
    result = r.run(max_boots=1)
    t1 = time.time()
    assert "app: done 1.0.0" in result.console, result.console
    assert "clock: earlier than the firmware's build" in result.console  # it started in 2000
    assert "on trial: the TLS handshake decides" in result.console  # the stand-in's sole source
    assert "let TLS through" in result.console
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
    ntp = stand_in_ntp(r)
    set_ntp(r, "127.0.0.1:%d" % dead_port())
    refused = r.run(max_boots=1)
    assert refused.exit_reason == "main-raised"
    assert "The certificate validity starts in the future" in refused.console
    assert "clock: the server certificate's dates do not fit the board's clock" in refused.console
    assert "the board needs time sources that agree" in refused.console
    set_ntp(r, ntp)
    again = r.run(max_boots=1)  # a power-up, with the stand-in's NTP
    assert "app: done 1.0.0" in again.console, again.console


def test_a_far_ahead_reply_is_ignored_and_the_floor_holds(rig, ntp_server):
    build = now_utc()
    stub = ntp_server(at(build.timestamp() + 25 * 365 * 86400))
    r = rig(app=APP, image=built(build))
    set_ntp(r, stub.address)
    result = r.run(max_boots=1)
    assert "more than 20 years after the firmware was built" in result.console
    assert "app: done 1.0.0" in result.console, result.console
    (clock,) = clock_printed(result.console)
    assert build.timestamp() <= clock < build.timestamp() + 86400


@pytest.mark.parametrize("liar", ["3 hours behind", "23 hours behind"])
def test_a_liar_behind_is_refused_by_tls_and_the_next_time_tried_at_once(rig, ntp_server, liar):
    # [liar, stand-in]: the liar's time is the lower, tried first; the server certificate is
    # "not yet valid" then, and the same connect() tries the stand-in's time: one connect, no
    # waiting for the loop
    stub = ntp_server(LIARS[liar])
    r = rig(app=APP, image=built(now_utc() - dt.timedelta(days=2)))
    set_ntp(r, [stub.address, stand_in_ntp(r)])
    t0 = time.time()
    result = r.run(max_boots=1)
    t1 = time.time()
    assert "app: done 1.0.0" in result.console, result.console
    assert "The certificate validity starts in the future" in result.console
    assert result.console.count("on trial: the TLS handshake decides") == 2
    (clock,) = clock_printed(result.console)
    assert t0 - 2 <= clock <= t1 + 2


@pytest.mark.parametrize("liar", ["1 year ahead", "2 years ahead"])
def test_a_liar_ahead_loses_to_the_lower_honest_time(rig, ntp_server, liar):
    # the stand-in's certificate lives ten years: the liar's time would let TLS through; the
    # lower (honest) time goes on trial first, and keeps the clock right
    stub = ntp_server(LIARS[liar])
    r = rig(app=APP)
    set_ntp(r, [stub.address, stand_in_ntp(r)])
    t0 = time.time()
    result = r.run(max_boots=1)
    t1 = time.time()
    assert "app: done 1.0.0" in result.console, result.console
    (clock,) = clock_printed(result.console)
    assert t0 - 2 <= clock <= t1 + 2


def test_the_board_connects_within_a_minute_of_an_honest_source_answering(rig, ntp_server):
    # main.py's loop on a board whose build predates the certificate, with a liar 11 years
    # ahead and an honest server that is silent at first: the board stays offline but keeps
    # asking (never stuck on one reply); once the honest server answers, it connects within a
    # minute of that answer
    liar, honest = ntp_server(LIARS["11 years ahead"]), ntp_server()
    honest.on = False
    old = now_utc() - dt.timedelta(days=2)
    r = rig(app=(ROOT / "main.py").read_text(), image=built(old))
    set_config(r, ntp=[liar.address, honest.address], telemetry_s=1)
    job = r.publish(built(old, "1.0.1", size=200_000))
    with Running(r, r.folder / "ops.log") as board:
        assert board.until(lambda: liar.requests >= 3, 240), board.dev.console
        assert r.execution(job).status == "QUEUED"
        assert "certificate validity has expired" in board.dev.console  # the liar's time, refused
        assert "back to the firmware's build time" in board.dev.console
        honest.on = True
        assert board.until(lambda: r.execution(job).status != "QUEUED", 240), board.dev.console
        connected = time.time()
        assert honest.answered, board.dev.console
        assert connected - honest.answered[0] < 60, (connected - honest.answered[0], board.dev.console)
        assert board.until(lambda: r.execution(job).status == "SUCCEEDED", 240), board.dev.console
        now = time.time()
        assert abs(board.dev.board_time() - now) < 5


def test_the_loop_feeds_the_watchdog_while_slow_sources_are_asked(rig, ntp_server):
    # main.py's loop with a 2 s watchdog (4 s with the emulator's grace) and eight silent
    # servers ahead of the stand-in's: asking them takes eight seconds, fed before each
    silent = [ntp_server() for _ in range(8)]
    for s in silent:
        s.on = False
    r = rig(app=(ROOT / "main.py").read_text())
    set_config(r, ntp=[s.address for s in silent] + [stand_in_ntp(r)], watchdog_s=2, telemetry_s=1)
    job = r.publish(built(now_utc(), "1.0.1", size=200_000))
    with Running(r, r.folder / "ops.log") as board:
        assert board.until(lambda: r.execution(job).status != "QUEUED", 120), board.dev.console
        console = board.dev.console
    assert all(s.requests >= 1 for s in silent)
    assert "WDT_RESET" not in console, console


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
    assert stub.requests == 2


def test_a_trial_boot_after_a_power_loss_without_ntp_rolls_back_with_the_reason(rig, ntp_server):
    # the old firmware downloads the update and resets; the power goes before the trial boot,
    # so the new firmware starts cold, below the server certificate, with NTP gone: it cannot
    # connect within trial_s and rolls back; the old firmware reports why once NTP is back
    old = now_utc() - dt.timedelta(days=2)
    stub = ntp_server()
    r = rig(app=(ROOT / "main.py").read_text(), image=built(old))
    set_config(r, ntp=stub.address, trial_s=3, telemetry_s=1)
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
