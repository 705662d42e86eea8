"""python -m emulator.secondary --state DIR [options]: run the simulated secondary MCU.

It serves SMP on a pseudo-terminal: the path of its other end (what a board's UART or an SMP
client opens) is printed on the first line of stdout, written to DIR/port and, with --link,
made a symlink. See emulator/README.md ("The secondary MCU").
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from emulator.secondary import mcuimage as mi
from emulator.secondary.mcu import DEFAULT_BUF_SIZE, DEFAULT_SLOT_SIZE, MCU, Faults, Reset
from emulator.secondary.serial import Receiver, encode_packet

DEFAULT_BAUDRATE = 115200
DEFAULT_WATCHDOG_MS = 2000
RESET_DELAY_S = 0.05  # os reset: Zephyr answers, then resets after a short delay
BANNER = "*** Booting secondary app %s ***\r\n"


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    return int(text[:-1] if mult > 1 else text, 0) * mult


def _write(fd: int, data: bytes) -> None:
    """Send on the line; what the other end's buffer cannot take is lost, as bytes sent on
    a wire that nobody reads."""
    try:
        os.write(fd, data)
    except BlockingIOError:
        pass


def _drain(fd: int) -> None:
    """What arrives while the MCU resets is lost."""
    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:
            return


def set_line(fd: int, baudrate: int) -> None:
    """Put the MCU's UART speed on the pseudo-terminal (raw, 8 bits: a pty takes no parity)."""
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = getattr(termios, f"B{baudrate}")
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class Runner:
    def __init__(self, mcu: MCU, fd: int, banner: bool, baudrate: int = DEFAULT_BAUDRATE,
                 watchdog_ms: int = DEFAULT_WATCHDOG_MS):
        self.mcu = mcu
        self.watchdog_ms = watchdog_ms
        self.booted_at = time.monotonic()
        self.fd = fd
        self.banner = banner
        self.speed = getattr(termios, f"B{baudrate}")
        self.baudrate = baudrate
        self.garbled = False
        self.faults_path = mcu.state / "faults.json"
        self.receiver = Receiver(mcu.buf_size)
        self.stop = False
        self.reset_due: float | None = None  # a reset answered, to come then (reset_late)

    def boot(self, cause: str) -> None:
        self.receiver = Receiver(self.mcu.buf_size)
        self.mcu.boot(cause)
        if self.banner:
            running = self.mcu.running.version_str if self.mcu.running else "none"
            _write(self.fd, (BANNER % running).encode())

    def reset(self, cause: str = "reset") -> None:
        self.reset_due = None
        _drain(self.fd)  # what came while it was resetting is lost; it listens once booted
        self.boot(cause)
        self.booted_at = time.monotonic()

    def serve(self) -> None:
        self.boot("power-on")
        self.booted_at = time.monotonic()
        while not self.stop:
            if self.mcu.hung and time.monotonic() - self.booted_at > self.watchdog_ms / 1000:
                self.mcu.log("app: watchdog reset")
                self.reset("watchdog")
                continue
            if self.reset_due is not None and time.monotonic() >= self.reset_due:
                self.mcu.log("os: reset requested (late)")
                self.reset()
                continue
            quick = self.mcu.hung or self.reset_due is not None
            if not select.select([self.fd], [], [], 0.05 if quick else 0.2)[0]:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)  # no one holds the other end
                continue
            if not self.line_matches():
                continue  # sent at another speed or format: garbage, never a packet
            for message in self.receiver.feed(data):
                if self.answer(message):
                    break  # the MCU reset: the rest of what arrived is lost

    def _count_down(self, name: str) -> None:
        """One more answer of a fault that lasts n answers (-1: for ever)."""
        faults = Faults.load(self.faults_path)
        value = getattr(faults, name)
        if isinstance(value, list):
            value[1] = value[1] - 1 if value[1] > 0 else value[1]
            setattr(faults, name, value if value[1] else None)
        elif value > 0:
            setattr(faults, name, value - 1)
        faults.save(self.faults_path)

    def wait(self, seconds: float) -> bool:
        """Busy for that long, reading nothing (what comes waits in the line); False if the
        process is asked to stop meanwhile."""
        end = time.monotonic() + seconds
        while not self.stop and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return not self.stop

    def line_matches(self) -> bool:
        """Whether the other end's UART runs at this one's speed, as the pseudo-terminal's
        settings say. Logged when it changes."""
        ok: bool = termios.tcgetattr(self.fd)[4] == self.speed
        if ok == self.garbled:
            self.garbled = not ok
            self.mcu.log(f"line: {'garbage: the other end is not at' if not ok else 'back at'} "
                         f"{self.baudrate} baud")
        return ok

    def answer(self, message: bytes) -> bool:
        """Handle one message; True if the MCU reset."""
        faults = Faults.load(self.faults_path)
        if faults.silent or self.mcu.dead or self.mcu.hung:
            self.mcu.log("fault: silent, no answer" if faults.silent else "app: not running, no answer")
            return False
        try:
            reply, reset_after = self.mcu.handle(message, faults)
        except Reset:
            faults = Faults.load(self.faults_path)
            faults.reset_at = None  # fires once
            faults.save(self.faults_path)
            self.reset()
            return True
        hold, self.mcu.hold = self.mcu.hold, 0.0
        if self.mcu.slowed:
            self.mcu.slowed = False
            faults = Faults.load(self.faults_path)
            if faults.slow and len(faults.slow) > 2:  # the next n chunks only
                faults.slow[2] -= 1
                if faults.slow[2] <= 0:
                    faults.slow = None
                faults.save(self.faults_path)
        if self.mcu.stalled:
            self.mcu.stalled = False
            faults = Faults.load(self.faults_path)
            forever = faults.stall is not None and faults.stall[1] < 0
            faults.stall = None  # fires once
            faults.silent = faults.silent or forever
            faults.save(self.faults_path)
            if forever:
                self.mcu.log("fault: stalled for good, no answer")
                return False
        if reply is not None and faults.only and list(reply[4:6] + reply[7:8]) != [0, *faults.only]:
            faults = Faults(**{**faults.__dict__, "late": None, "twice": 0, "stale": 0})  # not this one
        if reply is not None and faults.late and faults.late[1]:
            hold = max(hold, faults.late[0] / 1000)
            self.mcu.log("fault: answer %d ms late" % faults.late[0])
            self._count_down("late")
        if hold > 0 and not self.wait(hold):
            return False  # stopped meanwhile
        if reply is not None:
            bad = faults.corrupt != 0
            if bad:
                self.mcu.log("fault: answer sent with a bad CRC")
                if faults.corrupt > 0:
                    faults = Faults.load(self.faults_path)
                    faults.corrupt = max(0, faults.corrupt - 1)
                    faults.save(self.faults_path)
            if faults.stale:
                out = bytearray(reply)
                out[6] = (out[6] - 1) & 0xFF  # the header's sequence number
                reply = bytes(out)
                self.mcu.log("fault: answer with the sequence number of the request before")
                self._count_down("stale")
            _write(self.fd, encode_packet(reply, bad_crc=bad))
            if faults.twice:
                self.mcu.log("fault: answer sent twice")
                _write(self.fd, encode_packet(reply, bad_crc=bad))
                self._count_down("twice")
        if reset_after and faults.reset_late:
            self.mcu.log("fault: reset answered, done %s s later" % faults.reset_late)
            self.reset_due = time.monotonic() + faults.reset_late
            faults = Faults.load(self.faults_path)
            faults.reset_late = None  # once
            faults.save(self.faults_path)
            return False
        if reset_after:
            time.sleep(RESET_DELAY_S)
            self.mcu.log("os: reset requested")
            self.reset()
            return True
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emulator.secondary", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", required=True, help="state folder (slots, trailers, faults)")
    ap.add_argument("--primary", help="factory image for the primary slot of a new state folder")
    ap.add_argument("--key", help="PEM of the ECDSA P-256 key images must be signed with "
                                  "(public or private, as imgtool keygen writes it)")
    ap.add_argument("--slot-size", type=parse_size, help=f"bytes per slot (default {DEFAULT_SLOT_SIZE:#x})")
    ap.add_argument("--buf-size", type=int, help=f"SMP reassembly buffer (default {DEFAULT_BUF_SIZE})")
    ap.add_argument("--baudrate", type=int, help=f"the MCU's UART speed, 8N1 (default {DEFAULT_BAUDRATE})")
    ap.add_argument("--erase-ms", type=float, help="time to erase one 4 KB sector of the MCU's flash "
                                                   "(default 0: at once)")
    ap.add_argument("--watchdog-ms", type=int, help="the application's watchdog period: a hung "
                                                    f"application is reset after it (default {DEFAULT_WATCHDOG_MS})")
    ap.add_argument("--no-banner", action="store_true", help="print no boot line on the UART")
    ap.add_argument("--link", help="also make a symlink to the serial port here")
    ap.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # pty master given by a launcher
    ap.add_argument("--silent", action="store_true", help="fault: never answer")
    ap.add_argument("--corrupt", type=int, default=0, help="fault: bad CRC on the next N answers (-1: all)")
    ap.add_argument("--reset-at", type=int, help="fault: reset when an upload reaches this byte")
    ap.add_argument("--refuse", help="fault: refuse every completed upload with this reason")
    ap.add_argument("--slow", type=_numbers, metavar="BYTES,MS[,N]",
                    help="fault: take at most BYTES of each upload chunk (0: all), answer after MS ms "
                         "(the next N chunks only)")
    ap.add_argument("--stall", type=_numbers, metavar="BYTE,SECONDS",
                    help="fault: go quiet for SECONDS when an upload reaches BYTE (once; below 0: for good)")
    args = ap.parse_args(argv)

    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    config = load_config(state, args)

    def log(text: str) -> None:
        print(f"[mcu] {text}", file=sys.stderr, flush=True)

    key = mi.load_public_key(config["key"].encode()) if config.get("key") else None
    mcu = MCU(state, config["slot_size"], key, config["buf_size"], log, config["erase_ms"])
    mcu.load()
    if mcu.image("primary") is None:
        factory = Path(args.primary).read_bytes() if args.primary else mi.make_image(
            b"secondary factory application\n", (0, 1, 0, 0))
        mcu.erase_slot("primary", 0)
        mcu.write_slot("primary", 0, factory)
        mcu.save()
    if args.silent or args.corrupt or args.reset_at is not None or args.refuse or args.slow or args.stall:
        Faults(args.silent, args.corrupt, args.reset_at, args.refuse, args.slow, args.stall).save(
            state / "faults.json")

    if args.fd is not None:
        fd = args.fd
        port = (state / "port").read_text().strip()
    else:
        fd, slave = os.openpty()
        tty.setraw(slave)
        set_line(slave, config["baudrate"])
        port = os.ttyname(slave)
        (state / "port").write_text(port + "\n")
    os.set_blocking(fd, False)
    if args.link:
        link = Path(args.link)
        link.unlink(missing_ok=True)
        link.symlink_to(port)
    runner = Runner(mcu, fd, not args.no_banner, config["baudrate"], config["watchdog_ms"])

    def stop(*_: object) -> None:
        runner.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(port, flush=True)
    runner.serve()
    return 0


def _numbers(text: str) -> list[float]:
    """Two or three numbers, "A,B[,C]"."""
    try:
        out = [float(x) for x in text.split(",")]
    except ValueError:
        out = []
    if not 2 <= len(out) <= 3:
        raise argparse.ArgumentTypeError(f"{text!r}: two or three numbers, A,B[,C]")
    return out


def load_config(state: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The MCU's build settings: chosen when its state folder is made, kept after."""
    path = state / "config.json"
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        config = {}
    config.setdefault("slot_size", DEFAULT_SLOT_SIZE)
    config.setdefault("buf_size", DEFAULT_BUF_SIZE)
    config.setdefault("baudrate", DEFAULT_BAUDRATE)
    config.setdefault("key", None)
    config.setdefault("erase_ms", 0.0)
    config.setdefault("watchdog_ms", DEFAULT_WATCHDOG_MS)
    if args.watchdog_ms:
        config["watchdog_ms"] = args.watchdog_ms
    if args.erase_ms is not None:
        config["erase_ms"] = args.erase_ms
    if args.baudrate:
        getattr(termios, f"B{args.baudrate}")  # a speed the line can be set to
        config["baudrate"] = args.baudrate
    if args.slot_size:
        config["slot_size"] = args.slot_size
    if args.buf_size:
        config["buf_size"] = args.buf_size
    if args.key:  # the MCU keeps the public key only, as MCUboot builds it in
        public = mi.load_public_key(Path(args.key).read_bytes())
        config["key"] = public.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    path.write_text(json.dumps(config, indent=1))
    return config


if __name__ == "__main__":
    sys.exit(main())
