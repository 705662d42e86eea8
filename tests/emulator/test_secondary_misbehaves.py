"""The simulated MCU's faults on the wire (late, twice, stale, only, reset_late), seen from a
raw serial client: what the board's SMP client meets in tests/device/test_peer_smp.py."""

from __future__ import annotations

import os
import select
import struct
import termios
import time
import tty

import cbor2
import pytest

from emulator.secondary import Secondary
from emulator.secondary.mcu import Faults
from emulator.secondary.serial import Receiver, encode_packet

HEADER = struct.Struct(">BBHHBB")


@pytest.fixture()
def line(tmp_path):
    with Secondary(tmp_path / "mcu", banner=False) as mcu:
        fd = os.open(mcu.port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        try:
            yield mcu, fd
        finally:
            os.close(fd)


def ask(fd: int, group: int, cmd: int, seq: int, op: int = 0, body: dict | None = None) -> None:
    data = cbor2.dumps(body or {})
    os.write(fd, encode_packet(HEADER.pack(8 | op, 0, len(data), group, seq, cmd) + data))


def answers(fd: int, n: int, wait: float = 10) -> list[tuple[int, int]]:
    """(group, seq) of the next n answers, or of those that come within `wait` seconds."""
    rx, out, t0 = Receiver(2048), [], time.monotonic()
    while len(out) < n and (left := t0 + wait - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            for m in rx.feed(os.read(fd, 4096)):
                _, _, _, group, seq, _ = HEADER.unpack_from(m)
                out.append((group, seq))
    return out


def settled(mcu, **now) -> None:
    """Wait until the MCU has counted its faults down to these values (it writes after it
    answers): a fault set before that could be overwritten."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        f = Faults.load(mcu.state / "faults.json")
        if all(getattr(f, k) == v for k, v in now.items()):
            return
        time.sleep(0.02)
    raise AssertionError(f"faults not counted down: {Faults.load(mcu.state / 'faults.json')}")


def test_twice_stale_and_late_answers(line):
    mcu, fd = line
    mcu.faults(twice=1)
    ask(fd, 1, 0, seq=7)
    assert answers(fd, 2) == [(1, 7), (1, 7)]
    settled(mcu, twice=0)
    mcu.faults(stale=1)
    ask(fd, 1, 0, seq=8)
    assert answers(fd, 1) == [(1, 7)]  # the number of the request before
    settled(mcu, stale=0)
    mcu.faults(late=[1000, 1])
    ask(fd, 1, 0, seq=9)
    assert answers(fd, 1, 0.5) == []  # it holds the answer 1 s: none can come sooner
    assert answers(fd, 1) == [(1, 9)]
    ask(fd, 1, 0, seq=10)  # each fault counted down to nothing: one plain answer
    assert answers(fd, 1) == [(1, 10)]
    settled(mcu, twice=0, stale=0, late=None)


def test_only_the_answers_to_one_request(line):
    mcu, fd = line
    mcu.faults(twice=-1, only=[0, 6])  # MCUmgr parameters only
    ask(fd, 1, 0, seq=1)
    ask(fd, 0, 6, seq=2)
    assert answers(fd, 3) == [(1, 1), (0, 2), (0, 2)]


def test_a_late_reset_answers_first_and_resets_after(line):
    mcu, fd = line
    boots = mcu.status()["boots"]
    mcu.faults(reset_late=1.5)
    ask(fd, 0, 5, seq=1, op=2)
    ask(fd, 1, 0, seq=2)  # the old application still answers meanwhile
    assert answers(fd, 2) == [(0, 1), (1, 2)]
    assert mcu.status()["boots"] == boots
    deadline = time.monotonic() + 10
    while mcu.status()["boots"] == boots and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mcu.status()["boots"] == boots + 1
    assert mcu.faults().reset_late is None  # once
