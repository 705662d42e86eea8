"""The board's clock: 2000-01-01 at power-up, kept over every other reset, set by
machine.RTC for time and for the TLS certificate checks alike."""

from __future__ import annotations

import calendar
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from emulator import device as emu_device
from emulator.device import ClockError, Device
from fotatools.cloud.ca import LocalCA
from tests.emulator.emuhelpers import EMIT, REPO, records

CLOCK = EMIT + """
import machine, time
def now():
    return list(time.gmtime()[:6])
cause = machine.reset_cause()
"""


def test_power_up_starts_in_2000_and_resets_keep_the_clock(board):
    result = board.run(CLOCK + """
import os, sys
emit([cause, now()])
if cause == machine.PWRON_RESET:
    machine.RTC().datetime((2030, 1, 2, 0, 3, 4, 5, 0))
    emit([machine.RTC().datetime()[:7], now()])
    machine.reset()
if cause == machine.HARD_RESET:
    machine.WDT(timeout=100)
    while True:
        time.sleep_ms(10)
if cause == machine.WDT_RESET:
    machine.deepsleep(20)
if cause == machine.DEEPSLEEP_RESET:
    sys.exit()
""", wdt_grace=0.1)
    r = records(result)
    causes = [x[0] for x in r if isinstance(x[0], int)]
    assert causes == [1, 2, 3, 4, 5]
    assert r[0][1][:4] == [2000, 1, 1, 0]  # a few seconds past midnight at most
    # 2030-01-02 is a Wednesday: weekday 2 (Monday is 0); the weekday given is ignored
    assert r[1][0] == [2030, 1, 2, 2, 3, 4, 5] and r[1][1] == [2030, 1, 2, 3, 4, 5]
    for cause, clock in r[2:]:
        assert clock[:4] == [2030, 1, 2, 3], (cause, clock)
    assert [b.reset_cause_name for b in result.boots] == [
        "PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET"]
    # a new run is a power-up: the clock starts again at the epoch
    again = board.run(CLOCK + "emit(now())\n")
    assert records(again)[0][:4] == [2000, 1, 1, 0]


def test_power_cut_resets_the_clock(board):
    # the first boot sets the clock, then writes ota_1 a byte at a time (one flash operation
    # each) until the power is cut in the middle of them; the next boot is a power-up
    result = board.run(CLOCK + """
import esp32
p = esp32.Partition("ota_1")
head = bytearray(1)
p.readblocks(0, head)
emit([cause, now()[0]])
if head[0] == 0xFF:
    machine.RTC().init((2031, 5, 6, 7, 8, 9, 0, 0))  # RTC.init: the hour comes fourth
    emit(now())
    for i in range(3000):
        p.writeblocks(0, b"\\x11", i)
    emit("not reached")
""", cut_at=1500, max_boots=3)
    assert records(result) == [[1, 2000], [2031, 5, 6, 7, 8, 9], [1, 2000]]
    assert [b.end for b in result.boots] == ["power-cut", "main-returned"]


def test_rtc_datetime_moves_time_time_and_board_time(board):
    result = board.run(CLOCK + """
machine.RTC().datetime((2027, 3, 4, 0, 5, 6, 7, 500000))
emit(time.time())
emit(machine.RTC().datetime()[7] >= 500000)
emit(err(machine.RTC().datetime, (2027, 3, 4)))
""")
    t, us, bad = records(result)
    set_to = calendar.timegm((2027, 3, 4, 5, 6, 7)) + 0.5
    assert set_to <= t < set_to + 60  # the unix port counts from 1970 (the ESP32 from 2000)
    assert us is True
    assert bad == ["ValueError", "requested length 8 but object has length 3"]
    assert set_to <= emu_device.board_time(board.state) < set_to + 120


@pytest.fixture()
def tls_server(tmp_path):
    """A TLS server on 127.0.0.1 with a certificate valid from an hour ago (a current one)."""
    ca = LocalCA(tmp_path / "ca").ensure()
    srv = ca.issue_server(tmp_path / "srv")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(srv.cert_pem, srv.key_pem)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello")
            except (OSError, ssl.SSLError):
                pass  # the board refused the certificate
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield ca.cert_der_path.read_bytes(), listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_tls_checks_certificate_dates_against_the_board_clock(board, tls_server):
    ca_der, port = tls_server
    (board.fs / "ca.der").write_bytes(ca_der)
    now = time.gmtime()
    result = board.run(CLOCK + f"""
import socket, ssl
def fetch():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=open("ca.der", "rb").read())
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", {port})[0][-1])
    try:
        t = ctx.wrap_socket(s, server_hostname="localhost")
        return t.read(5).decode()
    finally:
        s.close()
emit(err(fetch))
machine.RTC().datetime({(now.tm_year, now.tm_mon, now.tm_mday, 0, now.tm_hour, now.tm_min,
                          now.tm_sec, 0)!r})
emit(fetch())
""")
    refused, fetched = records(result)
    # extmod/modtls_mbedtls.c raises the verify result as ValueError, on a board as here
    assert refused[0] == "ValueError" and "validity starts in the future" in refused[1], refused
    assert fetched == "hello"


def test_without_libfaketime_the_emulator_refuses_to_run(board, monkeypatch):
    monkeypatch.delenv("ESP32_LIBFAKETIME", raising=False)
    monkeypatch.setattr(emu_device, "LIBFAKETIME", "libfaketime-absent.so.1")
    with pytest.raises(ClockError, match="apt-get install faketime"):
        Device(board.flash, board.fs, echo=None)
    monkeypatch.setenv("ESP32_LIBFAKETIME", str(board.fs / "none.so"))
    with pytest.raises(ClockError, match="not a file"):
        Device(board.flash, board.fs, echo=None)
    # the command line says so in one line
    proc = subprocess.run([sys.executable, "-m", "emulator", "run", "--flash", str(board.flash),
                           "--fs", str(board.fs)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 64 and "ESP32_LIBFAKETIME=" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_images_carry_their_build_time():
    import datetime as dt

    from emulator import flashfmt as ff
    from emulator.image import LOADED_AT, build_app_image, read_app_desc

    d = read_app_desc(build_app_image("v1", built=dt.datetime(2026, 3, 5, 1, 2, 3)))
    assert (d["date"], d["time"]) == ("Mar  5 2026", "01:02:03")  # as __DATE__, __TIME__
    east = dt.timezone(dt.timedelta(hours=2))
    d = read_app_desc(build_app_image("v1", built=dt.datetime(2026, 1, 1, 1, 0, 0, tzinfo=east)))
    assert (d["date"], d["time"]) == ("Dec 31 2025", "23:00:00")  # written in UTC
    d = read_app_desc(build_app_image("v1"))
    built = dt.datetime(*ff.parse_build_date_time(d["date"], d["time"]), tzinfo=dt.timezone.utc)
    assert built == LOADED_AT <= dt.datetime.now(dt.timezone.utc)
    assert build_app_image("v1") == build_app_image("v1")  # one process: the same bytes
    assert ff.parse_build_date_time("Foo  1 2026", "00:00:00") is None
    assert ff.parse_build_date_time("Jan  1 2026", "25:00:00") is None
