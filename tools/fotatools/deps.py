"""Fetch the device's third-party MicroPython modules.

`umqtt.simple` is published on PyPI only as an sdist without a setup.py, which pip
cannot install; the Simple Repository API client fetches it (digest-checked) from the
default index and the module is unpacked into a folder that is copied to the device.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

from pypi_simple import PyPISimple

UMQTT_PROJECT = "micropython-umqtt.simple"
UMQTT_VERSION = "1.3.4"


def fetch_umqtt(dest: Path) -> Path:
    """Unpack umqtt/simple.py into dest/umqtt/ and return its path."""
    with PyPISimple() as client:
        page = client.get_project_page(UMQTT_PROJECT)
        pkgs = [p for p in page.packages if p.version == UMQTT_VERSION and p.package_type == "sdist"]
        if not pkgs:
            raise SystemExit(f"{UMQTT_PROJECT} {UMQTT_VERSION} is not on the index")
        with tempfile.TemporaryDirectory() as tmp:
            sdist = Path(tmp) / pkgs[0].filename
            client.download_package(pkgs[0], path=sdist)  # checks the index's digest
            with tarfile.open(sdist, mode="r:gz") as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith("umqtt/simple.py"))
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
    out = dest / "umqtt"
    out.mkdir(parents=True, exist_ok=True)
    (out / "__init__.py").write_bytes(b"")
    (out / "simple.py").write_bytes(data)
    return out / "simple.py"



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fetch the device's MicroPython dependencies")
    ap.add_argument("dest", type=Path, help="folder to unpack into (e.g. .deps)")
    args = ap.parse_args(argv)
    path = fetch_umqtt(args.dest)
    print(f"umqtt.simple {UMQTT_VERSION} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
