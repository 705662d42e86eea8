"""package.json: `mpremote mip install github:OWNER/REPO` (or `mip.install` on a board)
installs lib/ and umqtt.simple. Checked with MicroPython's own `mip` (unix port), fetching over
HTTP from a server on 127.0.0.1: the repository's files, and for the dependency an index laid
out as micropython-lib's (`package/<mpy>/<name>/<version>.json` listing files by hash,
`file/<h[:2]>/<h>`) that serves the umqtt.simple `make setup` fetched."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fotatools import __version__
from tests.device.mpy import micropython

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = json.loads((ROOT / "package.json").read_text())
UMQTT = ROOT / ".deps" / "umqtt" / "simple.py"


def test_package_lists_every_library_file():
    urls = PACKAGE["urls"]
    assert sorted(dest for dest, _ in urls) == sorted(f"fota/{p.name}" for p in (ROOT / "lib" / "fota").glob("*.py"))
    for dest, src in urls:
        assert src == f"lib/{dest}"  # relative to package.json: the repository's lib/
        assert (ROOT / src).is_file(), src
    assert PACKAGE["deps"] == [["umqtt.simple", "latest"]]
    assert PACKAGE["version"] == __version__


def _mpy_version() -> str:
    out = subprocess.run([micropython(), "-c", "import sys; print(sys.implementation._mpy & 0xFF)"],
                         capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


@pytest.fixture
def site(tmp_path: Path):
    """A web root with the repository (package.json, lib/) and a package index holding
    umqtt.simple; yields its base URL."""
    www = tmp_path / "www"
    (www / "repo").mkdir(parents=True)
    shutil.copy(ROOT / "package.json", www / "repo" / "package.json")
    shutil.copytree(ROOT / "lib", www / "repo" / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    data = UMQTT.read_bytes()
    short = hashlib.sha256(data).hexdigest()[:8]
    (www / "index" / "file" / short[:2]).mkdir(parents=True)
    (www / "index" / "file" / short[:2] / short).write_bytes(data)
    listing = json.dumps({"hashes": [["umqtt/simple.py", short]], "version": "1.0"})
    for mpy in (_mpy_version(), "py"):
        (www / "index" / "package" / mpy / "umqtt.simple").mkdir(parents=True)
        (www / "index" / "package" / mpy / "umqtt.simple" / "latest.json").write_text(listing)
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def mip_install(url: str, index: str, target: Path) -> subprocess.CompletedProcess[str]:
    code = f"import mip; mip.install({url!r}, index={index!r}, target={str(target)!r})"
    return subprocess.run([micropython(), "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not UMQTT.exists(), reason="umqtt.simple not fetched (make setup)")
def test_mip_installs_the_library_and_umqtt(site: str, tmp_path: Path):
    target = tmp_path / "board" / "lib"
    target.mkdir(parents=True)
    r = mip_install(f"{site}/repo/package.json", f"{site}/index", target)
    assert r.returncode == 0 and "Done" in r.stdout, r.stdout + r.stderr
    for dest, src in PACKAGE["urls"]:
        assert (target / dest).read_bytes() == (ROOT / src).read_bytes(), dest
    assert (target / "umqtt" / "simple.py").read_bytes() == UMQTT.read_bytes()
    # what was installed imports from there (fota.plan needs nothing of a board)
    out = subprocess.run([micropython(), "-c", "import fota.plan, umqtt.simple; print('ok')"],
                         capture_output=True, text=True, timeout=30, env={"MICROPYPATH": str(target)})
    assert out.stdout.strip() == "ok", out.stdout + out.stderr

