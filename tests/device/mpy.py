"""Run device code in the real MicroPython interpreter, from pytest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib"
PORT = ROOT / "emulator" / "port"
UMQTT = ROOT / ".deps"


def micropython() -> str:
    exe = Path(sys.executable).parent / "micropython"
    return str(exe) if exe.exists() else (shutil.which("micropython") or "micropython")


def run(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None,
        heapsize: str = "512k", timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """Run `code` with lib/ and umqtt on the path (not the emulator's esp32/machine)."""
    e = dict(os.environ)
    e["MICROPYPATH"] = os.pathsep.join([str(LIB), str(UMQTT), ".frozen"])
    e.update(env or {})
    p = subprocess.run([micropython(), "-X", f"heapsize={heapsize}", "-c", code], cwd=cwd, env=e,
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"micropython failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_json(code: str, **kw) -> object:
    """Run code that prints one JSON value on its last line; return it."""
    out = run(code, **kw).stdout.strip().splitlines()
    return json.loads(out[-1])
