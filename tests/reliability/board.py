"""A board running the project's own main.py in the background, watched from the cloud side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from emulator.device import Device, RunResult
from emulator.flash import Flash
from tests.device.rig import ROOT, Rig

MAIN = (ROOT / "main.py").read_text()
OTA_1 = (0x190000, 0x190000 + 0x180000)  # the slot an update from ota_0 writes


class Running:
    """rig's board, booted with main.py in a thread and a log of every flash operation."""

    def __init__(self, r: Rig, oplog: Path, **kw) -> None:
        self.oplog = oplog
        self.dev = Device(r.flash, r.fs, heapsize=kw.pop("heapsize", "256k"), echo=None,
                          env={"ESP32_OPLOG": str(oplog)}, **kw)

    def __enter__(self) -> "Running":
        self.dev.start(timeout=600)
        return self

    def until(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if done():
                return True
            if not self.dev.running:
                return done()
            time.sleep(0.5)
        return False

    def stop(self) -> RunResult:
        result = self.dev.stop(30)
        assert result is not None, "the board did not stop"
        return result

    def __exit__(self, *exc: object) -> None:
        if self.dev.running:
            self.dev.stop(30)
        self.dev.close()


def ops_in(oplog: Path, lo: int, hi: int) -> list[str]:
    """The logged flash operations that touch [lo, hi)."""
    out = []
    if not oplog.exists():
        return out
    for line in oplog.read_text().splitlines():
        kind, addr, size = line.split()
        a, n = int(addr, 16), int(size, 16)
        if a < hi and a + n > lo:
            out.append(line)
    return out


def outcome(r, job, result) -> str:
    """'' when the board and the job agree after the run, else what went wrong."""
    if result.exit_reason != "main-returned":
        return f"run ended {result.exit_reason}"
    f = Flash(r.flash)
    slot = f.boot_slot()
    try:
        f.verify_slot(slot)
    except Exception as e:  # noqa: BLE001 - any failure to verify is the finding
        return f"boot slot {slot} does not verify: {e}"
    ex = r.execution(job)
    if ex.status == "IN_PROGRESS":  # the last cut came after the last report: one more boot
        again = r.run(max_boots=4)
        if again.exit_reason != "main-returned":
            return f"the boot after ended {again.exit_reason}"
        ex = r.execution(job)
    version = Flash(r.flash).app_desc(Flash(r.flash).boot_slot())["version"]
    if ex.status not in ("SUCCEEDED", "FAILED"):
        return f"job {ex.status}"
    if (ex.status == "SUCCEEDED") != (version == "1.0.1"):
        return f"job {ex.status} but the board runs {version}"
    return ""
