"""A simulated secondary MCU on the emulated board's UART: MCUboot with two slots and an SMP
server (Zephyr MCUmgr's OS and image-management groups) over the serial transport, in its own
process. See emulator/README.md ("The secondary MCU").

    from emulator.secondary import Secondary
    with Secondary(tmp_path / "mcu", key="key.pem") as mcu:      # starts it
        Device(flash, fs, uarts={1: mcu.port})                   # the board's UART(1)
        mcu.faults(silent=True)                                  # faults on demand
        mcu.status()["trailers"], mcu.slot("secondary")          # what it holds

The launcher holds the pseudo-terminal, so the port stays the same over `power_cycle()`
(the process is restarted: RAM lost, MCUboot runs) as the wire to a real MCU would.
Images (`mcuimage.make_image`, or `imgtool sign`) whose body holds `mcusim:self-confirm`
confirm themselves at boot, `mcusim:crash` crash as they start, `mcusim:hang` hang until the
watchdog resets the MCU; any other image waits for an SMP confirm.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Any

from emulator.secondary.__main__ import DEFAULT_BAUDRATE, set_line
from emulator.secondary.mcu import Faults

REPO = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    """In the MCU's process: end with the process that started it (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Secondary:
    """The simulated MCU process. `key`: PEM file (or bytes) of the ECDSA P-256 key images
    must be signed with (none: signatures are not checked); `primary`: factory image for slot
    0 (default: a small unsigned image, version 0.1.0)."""

    def __init__(self, state: str | os.PathLike[str], *, primary: str | os.PathLike[str] | bytes | None = None,
                 key: str | os.PathLike[str] | bytes | None = None, slot_size: int | None = None,
                 buf_size: int | None = None, banner: bool = True, baudrate: int | None = None,
                 erase_ms: float | None = None, watchdog_ms: int | None = None):
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.primary = primary
        self.key = key
        self.slot_size = slot_size
        self.buf_size = buf_size
        self.banner = banner
        self.baudrate = baudrate
        self.erase_ms = erase_ms
        self.watchdog_ms = watchdog_ms
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        set_line(self._slave, baudrate or DEFAULT_BAUDRATE)  # until the other end sets its own
        self.port = os.ttyname(self._slave)
        (self.state / "port").write_text(self.port + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        args = [sys.executable, "-m", "emulator.secondary", "--state", str(self.state),
                "--fd", str(self._master)]
        for name, value in (("--primary", self.primary), ("--key", self.key)):
            if isinstance(value, bytes):
                path = self.state / ("factory.bin" if name == "--primary" else "key.pem")
                path.write_bytes(value)
                value = path
            if value is not None:
                args += [name, str(value)]
        if self.slot_size:
            args += ["--slot-size", str(self.slot_size)]
        if self.buf_size:
            args += ["--buf-size", str(self.buf_size)]
        if self.baudrate:
            args += ["--baudrate", str(self.baudrate)]
        if self.erase_ms is not None:
            args += ["--erase-ms", str(self.erase_ms)]
        if self.watchdog_ms:
            args += ["--watchdog-ms", str(self.watchdog_ms)]
        if not self.banner:
            args.append("--no-banner")
        return args

    def start(self, timeout: float = 15.0) -> "Secondary":
        """Power it on; returns once its application is up (MCUboot has run)."""
        if self.running:
            raise RuntimeError("the secondary MCU is already running")
        before = self.status().get("boots", 0)
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.state / "mcu.log", "ab") as log:
            self._proc = subprocess.Popen(self._args(), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=log,
                                          pass_fds=(self._master,), preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while self.status().get("boots", 0) <= before:
            if self._proc.poll() is not None:
                raise RuntimeError("the secondary MCU stopped: see " + str(self.state / "mcu.log"))
            if time.monotonic() > deadline:
                raise TimeoutError("the secondary MCU did not boot")
            time.sleep(0.02)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Power it off (the process ends; flash and trailers stay in the state folder)."""
        if self._proc is not None:
            # between two packets, never inside MCUboot's swap (whose own power-fail safety is
            # not modelled here)
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def power_cycle(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "Secondary":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what the tests look at
    def faults(self, **kw: Any) -> Faults:
        """Set faults (silent, corrupt, reset_at, refuse, slow, stall: see mcu.Faults); the
        others keep their value. Takes effect at the next packet."""
        path = self.state / "faults.json"
        faults = Faults.load(path)
        for k, v in kw.items():
            if not hasattr(faults, k):
                raise TypeError(f"no fault {k!r}")
            setattr(faults, k, v)
        faults.save(path)
        return faults

    def clear_faults(self) -> None:
        Faults().save(self.state / "faults.json")

    def status(self) -> dict[str, Any]:
        """mcu.json: the trailers, the boot count and the last boot (cause, swap, version)."""
        try:
            status: dict[str, Any] = json.loads((self.state / "mcu.json").read_text())
            return status
        except (OSError, ValueError):
            return {}

    def slot(self, name: str) -> bytes:
        return (self.state / f"{name}.bin").read_bytes()

    def log(self) -> str:
        try:
            return (self.state / "mcu.log").read_text()
        except OSError:
            return ""

    def board_env(self, uart: int = 1) -> dict[str, str]:
        """The environment that connects the emulated board's machine.UART(uart) to it."""
        return {f"ESP32_UART{uart}": self.port}
