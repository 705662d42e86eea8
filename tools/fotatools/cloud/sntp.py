"""The stand-in's time service: an SNTP server (RFC 4330) answering from this machine's clock.

A board's clock starts at 2000-01-01 after power-up and TLS checks certificate dates against
it, so devices ask NTP before they connect (`lib/fota/clock.py`). AWS devices use three
independent public servers (a time is believed when two agree); devices of the stand-in use
this one alone, whose address `fota provision` writes into their config.json ("ntp"): a sole
source's time is confirmed by the TLS handshake it lets through.

Where it listens: UDP port 123, the port devices ask by default, when this process may bind it
(root); each stand-in on loopback takes its own 127.x.y.z address, so that several run side by
side (tests), and keeps it over restarts. Without the right to bind 123 (or with 123 taken), a
free port: devices then get "host:port".
"""

from __future__ import annotations

import errno
import logging
import random
import socket
import struct
import threading
import time
from typing import Callable

log = logging.getLogger("fotatools.cloud.sntp")

NTP_PORT = 123
NTP_DELTA = 2208988800  # 1900-01-01 to 1970-01-01
REFID = b"LOCL"  # RFC 4330: an uncalibrated local clock


def ntp_stamp(t: float) -> bytes:
    """A 64-bit NTP timestamp (seconds since 1900 and a binary fraction) of Unix time t."""
    secs = int(t)
    return struct.pack("!II", (secs + NTP_DELTA) & 0xFFFFFFFF, int((t - secs) * 2**32) & 0xFFFFFFFF)


def reply(request: bytes, received: float, now: float) -> bytes | None:
    """The server's answer to a client's request (RFC 4330 section 5), or None for anything
    that is not a client request (too short, mode other than 3, version outside 1..4)."""
    if len(request) < 48:
        return None
    version, mode = request[0] >> 3 & 7, request[0] & 7
    if mode != 3 or not 1 <= version <= 4:
        return None
    head = struct.pack("!BBbb", (0 << 6) | (version << 3) | 4, 1, request[2], -20)
    return (head + struct.pack("!II", 0, 0) + REFID + ntp_stamp(now)
            + request[40:48] + ntp_stamp(received) + ntp_stamp(now))


def bind(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


def loopback_candidates(rng: random.Random, count: int = 20) -> list[str]:
    """Loopback addresses other than 127.0.0.1 (all of 127/8 reaches this machine on Linux)."""
    return [f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
            for _ in range(count)]


def open_socket(bind_all: bool, again: tuple[str, int] | None = None) -> socket.socket:
    """The server's socket: `again` (the address of the last run) if it can be had, else port
    123 (on every interface with `bind_all`, else on a loopback address of its own), else a
    free port."""
    tries: list[tuple[str, int]] = [again] if again else []
    if bind_all:
        tries.append(("0.0.0.0", NTP_PORT))
    else:
        tries += [(h, NTP_PORT) for h in loopback_candidates(random.Random())]
    for host, port in tries:
        try:
            return bind(host, port)
        except OSError as e:
            if e.errno == errno.EACCES and port == NTP_PORT:
                break  # no right to bind 123 anywhere: a free port
            continue
    return bind("0.0.0.0" if bind_all else "127.0.0.1", 0)


Answer = Callable[[bytes, float, float], "bytes | None"]


class SntpServer:
    """Answers SNTP requests on `sock` from a thread, until stop(). `clock` gives the time
    served; `answer(request, received, now)` makes each reply (None: no reply)."""

    def __init__(self, sock: socket.socket, clock: Callable[[], float] = time.time,
                 answer: Answer | None = None) -> None:
        self.sock = sock
        self.clock = clock
        self.answer = answer or reply
        self.requests = 0
        self.answered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def start(self) -> "SntpServer":
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, name="sntp", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            received = self.clock()
            self.requests += 1
            out = self.answer(data, received, self.clock())
            if out is None:
                continue
            try:
                self.sock.sendto(out, peer)
                self.answered += 1
            except OSError as e:
                log.debug("sntp reply to %s failed: %s", peer, e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()


def device_address(host: str, port: int) -> str:
    """What a device's config.json says: "host" for port 123, else "host:port"."""
    return host if port == NTP_PORT else f"{host}:{port}"
