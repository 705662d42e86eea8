"""SNTP servers for tests of the board's clock: honest, silent, or lying in each way a server
(or anything on the way) can: a time years ahead or hours behind, a malformed packet, a
kiss-of-death, an answer to another request."""

from __future__ import annotations

import time
from typing import Callable

from fotatools.cloud.sntp import SntpServer, bind, reply

Answer = Callable[[bytes, float, float], "bytes | None"]
HOUR = 3600
YEAR = 365 * 86400


def shifted(seconds: float) -> Answer:
    """Well-formed replies whose time is the host's moved by `seconds`."""
    return lambda request, received, now: reply(request, received + seconds, now + seconds)


def at(unix: float) -> Answer:
    """Well-formed replies that always give the same time."""
    return lambda request, received, now: reply(request, unix, unix)


def patched(offset: int, data: bytes, answer: Answer = reply) -> Answer:
    """Replies with bytes at `offset` replaced."""
    def out(request: bytes, received: float, now: float) -> bytes | None:
        packet = bytearray(answer(request, received, now) or b"")
        packet[offset:offset + len(data)] = data
        return bytes(packet)
    return out


def short(request: bytes, received: float, now: float) -> bytes | None:
    return (reply(request, received, now) or b"")[:40]


def kiss(code: bytes) -> Answer:
    """A kiss-of-death (RFC 4330 section 8): stratum 0, LI 3, the code in the reference id,
    and a transmit time 11 years ahead (a client that ignores the stratum takes it)."""
    return patched(0, bytes([0xE4, 0]), patched(12, code, shifted(11 * YEAR)))


# Every kind of liar the sweeps try: name -> how it answers.
LIARS: dict[str, Answer] = {
    "1 year ahead": shifted(YEAR),
    "2 years ahead": shifted(2 * YEAR),
    "11 years ahead": shifted(11 * YEAR),
    "3 hours behind": shifted(-3 * HOUR),
    "23 hours behind": shifted(-23 * HOUR),
    "short packet": short,
    "client mode": patched(0, bytes([0x23]), shifted(YEAR)),
    "broadcast mode": patched(0, bytes([0x25]), shifted(YEAR)),
    "other request": patched(24, b"\x01" * 8, shifted(YEAR)),
    "unsynchronized": patched(0, bytes([0xE4]), shifted(YEAR)),
    "kiss-of-death RATE": kiss(b"RATE"),
    "kiss-of-death DENY": kiss(b"DENY"),
}


class StubNtp:
    """An SNTP server on 127.0.0.1 whose replies the test shapes; `on` False: silent.
    `answered` holds the host time of each reply sent."""

    def __init__(self, answer: Answer = reply, on: bool = True) -> None:
        self.answer = answer
        self.on = on
        self.answered: list[float] = []
        self.server = SntpServer(bind("127.0.0.1", 0), answer=self._answer).start()

    def _answer(self, request: bytes, received: float, now: float) -> bytes | None:
        if not self.on:
            return None
        out = self.answer(request, received, now)
        if out is not None:
            self.answered.append(time.time())
        return out

    @property
    def port(self) -> int:
        return self.server.address[1]

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    @property
    def requests(self) -> int:
        return self.server.requests

    def close(self) -> None:
        self.server.stop()
