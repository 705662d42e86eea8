"""The stand-in's SNTP server (tools/fotatools/cloud/sntp.py): which requests get a reply, on
both sides of each rule, and a server that keeps answering after being idle and after a
request it ignores."""

from __future__ import annotations

import errno
import logging
import socket
import time

import pytest

from fotatools.cloud.sntp import SntpServer, bind, reply
from tests.cloud.test_cloud_sntp import client_request, unpack


@pytest.mark.parametrize("kw, answered", [
    ({}, True), ({"length": 47}, False), ({"length": 48}, True), ({"length": 68}, True),
    ({"version": 0}, False), ({"version": 1}, True), ({"version": 4}, True), ({"version": 5}, False),
    ({"mode": 2}, False), ({"mode": 4}, False), ({"mode": 3}, True),
])
def test_which_requests_get_a_reply(kw, answered):
    out = reply(client_request(**kw), 1_800_000_000.5, 1_800_000_001.25)
    assert (out is not None) is answered
    if out is not None:
        a = unpack(out)
        assert len(out) == 48 and a["mode"] == 4 and a["li"] == 0 and a["stratum"] == 1
        assert a["version"] == kw.get("version", 4) and a["poll"] == 6 and a["precision"] == -20
        assert a["originate"] == client_request(**kw)[40:48]
        assert a["receive"][0] == 1_800_000_000 + 2208988800 and a["transmit"][0] == a["receive"][0] + 1


def test_the_server_keeps_answering_after_idling_and_after_ignoring(tmp_path):
    server = SntpServer(bind("127.0.0.1", 0), clock=lambda: 1_800_000_000.0).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            time.sleep(0.6)  # longer than the server's 0.2 s receive timeout, several times
            s.sendto(client_request(), server.address)
            assert unpack(s.recv(100))["mode"] == 4
            for bad in (client_request(mode=4), client_request(length=10), b""):
                s.sendto(bad, server.address)
            s.sendto(client_request(), server.address)
            assert unpack(s.recv(100))["mode"] == 4
    finally:
        server.stop()
    assert (server.requests, server.answered) == (5, 2)


class _Unreachable:
    """A server socket whose replies cannot be sent (the peer's network went away)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def __getattr__(self, name: str):
        return getattr(self.sock, name)

    def sendto(self, data: bytes, peer) -> int:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")


def test_a_reply_that_cannot_be_sent_is_logged_at_debug_and_the_server_goes_on(caplog):
    caplog.set_level(logging.DEBUG, logger="fotatools.cloud.sntp")
    server = SntpServer(_Unreachable(bind("127.0.0.1", 0)), clock=lambda: 1_800_000_000.0).start()  # type: ignore[arg-type]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            me = s.getsockname()
            for n in (1, 2):
                s.sendto(client_request(), server.address)
                deadline = time.monotonic() + 10
                while server.requests < n and server._thread.is_alive() and time.monotonic() < deadline:
                    time.sleep(0.01)
    finally:
        server.stop()
    assert (server.requests, server.answered) == (2, 0)
    records = [r for r in caplog.records if r.name == "fotatools.cloud.sntp"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.DEBUG, f"sntp reply to {me!r} failed: [Errno {errno.ENETUNREACH}] Network is unreachable")] * 2
