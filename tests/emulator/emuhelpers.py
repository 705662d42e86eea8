"""Helpers for the emulator tests: boards in temporary folders, snippets run on them."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from emulator.device import Device, RunResult, find_micropython

REPO = Path(__file__).resolve().parents[2]
MARK = "@@"


@dataclass
class Board:
    flash: Path
    fs: Path
    state: Path

    def write(self, name: str, text: str) -> None:
        path = self.fs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def run(self, main: str | None = None, **kw) -> RunResult:
        """Boot with main.py = `main` (if given) until the run ends."""
        if main is not None:
            self.write("main.py", main)
        dev_kw = {k: kw.pop(k) for k in ("strict", "wdt_grace", "heapsize", "wdt_model") if k in kw}
        dev = Device(self.flash, self.fs, state_dir=self.state, echo=None, **dev_kw)
        kw.setdefault("timeout", 60)
        return dev.run(**kw)


def records(result: RunResult) -> list:
    """The values a snippet printed with emit() (one JSON document per line)."""
    out = []
    for line in result.console.splitlines():
        if line.startswith(MARK + " "):
            out.append(json.loads(line[len(MARK) + 1:]))
    return out


# a prelude for snippets: emit(x) prints x as JSON on a marked line
EMIT = f"""
import json
def emit(x):
    print("{MARK} " + json.dumps(x))
def err(f, *a, **kw):
    try:
        f(*a, **kw)
        return None
    except Exception as e:
        return [type(e).__name__] + list(e.args)
def flash_file(part, name):
    # write a file into a partition sector by sector, as an updater does
    with open(name, "rb") as f:
        n = 0
        while True:
            chunk = f.read(4096)
            if not chunk:
                break
            part.writeblocks(n, chunk + b"\\xff" * (4096 - len(chunk)))
            n += 1
"""


def run_micropython(code: str, cwd: Path) -> str:
    """Run a snippet in the plain unix port with emulator/ on sys.path (no board)."""
    prelude = f"import sys\nsys.path.insert(0, {str(REPO / 'emulator')!r})\n"
    proc = subprocess.run([find_micropython(), "-c", prelude + code], cwd=cwd,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
