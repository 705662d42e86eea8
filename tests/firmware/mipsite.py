"""What the mip tests share: the package index `fota mip-index` builds, a web server on
127.0.0.1 for a folder, and MicroPython's own `mip` (unix port) installing from it."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fotatools import cli
from tests.device.mpy import micropython

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = json.loads((ROOT / "package.json").read_text())
UMQTT = ROOT / ".deps" / "umqtt" / "simple.py"


def build_index(out: Path, *extra: str) -> Path:
    """`fota mip-index OUT` for this repository (what it prints is dropped); -> OUT."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["mip-index", str(out), "--project", str(ROOT), *extra]) == 0
    return out


def board_mpy_version() -> str:
    """What mip asks for on this MicroPython: sys.implementation._mpy & 0xFF."""
    out = subprocess.run([micropython(), "-c", "import sys; print(sys.implementation._mpy & 0xFF)"],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """folder over HTTP on 127.0.0.1; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def mip_install(package: str, index: str, target: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    """MicroPython's mip.install(package, index=, target=, **kw) in the unix port."""
    args = "".join(f", {k}={v!r}" for k, v in kw.items())
    code = f"import mip; mip.install({package!r}, index={index!r}, target={str(target)!r}{args})"
    return subprocess.run([micropython(), "-c", code], capture_output=True, text=True, timeout=120)


def installed(index_url: str, target: Path, **kw: object) -> Path:
    """fota installed by mip from the index into target (made here); -> target."""
    target.mkdir(parents=True)
    r = mip_install("fota", index_url, target, **kw)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("Done"), r.stdout + r.stderr
    return target


def modules() -> list[str]:
    """The package's modules, as package.json lists its files: fota, fota.apps, ..."""
    out = []
    for dest, _ in PACKAGE["urls"]:
        name = dest[:-3].replace("/", ".")
        out.append(name[:-len(".__init__")] if name.endswith(".__init__") else name)
    return sorted(out)
