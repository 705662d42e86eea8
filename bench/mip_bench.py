"""Benchmark of the two forms mip installs the library in: .mpy (compiled by `fota mip-index`
with mpy-cross) against .py source (mip's mpy=False), from the index that command builds,
installed by MicroPython's own mip (unix port) over HTTP on 127.0.0.1.

Figures (printed as JSON), all measured in this run:
- `installed_bytes`: the bytes of the files each form puts into the board's /lib (fota/ and
  umqtt/), and `flash_kb`: what they take of the board's littlefs filesystem (os.statvfs on
  the emulated board, against an empty /lib: whole 4 KB blocks, and littlefs's metadata);
- `cycle_import_kb`: the heap the job cycle's modules (bench/device_bench.py CYCLE_MODULES)
  keep after import on the emulated board (gc.mem_alloc() before and after, collected), from
  each form: a .py module keeps its bytecode in the heap as a .mpy one does, and the compiler's
  own work is garbage once the import is done;
- `per_module_kb`: the same, module by module, the package's lowest layers first (each
  with the modules below it already imported, so each figure is the module's own);
- `cycle_import_ms`: how long that import takes on the emulated board (this machine's CPU,
  not an ESP32's: the ratio is the figure);
- `min_heap_import_kb`: the smallest heap (to 2 KB) with which the emulated board imports
  those modules at all: with .py the compiler's peak (parse tree, scopes) comes on top;
- `min_heap_cycle_kb`: the smallest heap (to 2 KB) with which a whole job cycle succeeds
  (bench/device_bench.py's, the same 1.5 MB image) with each form as the board's /lib;
- `word_bytes`: 8 on this 64-bit unix port, 4 on an ESP32: objects (not bytecode) take up to
  twice their ESP32 size here.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from device_bench import CYCLE_MODULES, MODULES, run_cycle, smallest, word_bytes  # noqa: E402
from emulator.device import Device  # noqa: E402
from emulator.flash import create_flash  # noqa: E402
from emulator.image import build_app_image  # noqa: E402
from fotatools.cloud import daemon  # noqa: E402
from fotatools.cloud.client import LocalBackend  # noqa: E402
from tests.device.test_package import layers  # noqa: E402
from tests.firmware.mipsite import board_mpy_version, build_index, installed, serve  # noqa: E402

# the cycle's modules, lowest layer first (fota/__init__.py states them, top first); the
# package itself comes with the first of its modules anyway
BOTTOM_UP = ["fota", "umqtt.simple"] + [f"fota.{m}" for layer in reversed(layers()) for m in layer
                                        if f"fota.{m}" in CYCLE_MODULES]
assert sorted(BOTTOM_UP) == sorted(CYCLE_MODULES)

PER_MODULE = """
import gc, json
out = []
for name in %r:
    gc.collect()
    a = gc.mem_alloc()
    __import__(name)
    gc.collect()
    out.append([name, gc.mem_alloc() - a])
print("per_module", json.dumps(out))
""" % (BOTTOM_UP,)

USED = """
import os
s = os.statvfs("/")
print("used_bytes", (s[2] - s[3]) * s[0])
"""

TIMED = """
import time
t = time.ticks_us()
import %s
print("import_ms", time.ticks_diff(time.ticks_us(), t) / 1000)
""" % ", ".join(CYCLE_MODULES)


def on_board(lib: Path, main: str, heap_kb: int = 256) -> str | None:
    """Run main.py once on a fresh emulated board with lib as /lib; -> its console if main.py
    returned, else None."""
    with tempfile.TemporaryDirectory(prefix="mip-bench-") as tmp:
        fs = Path(tmp) / "fs"
        shutil.copytree(lib, fs / "lib")
        (fs / "main.py").write_text(main)
        flash = create_flash(Path(tmp) / "flash.bin", build_app_image("1.0.0", size=200_000))
        with Device(flash, fs, heapsize=f"{heap_kb}k", echo=None) as dev:
            r = dev.run(max_boots=1, timeout=120)
    return r.console if r.exit_reason == "main-returned" else None


def value(console: str | None, key: str) -> str:
    lines = [ln for ln in (console or "").splitlines() if ln.startswith(key + " ")]
    if not lines:
        raise SystemExit(f"bench: no {key} from the board:\n{console}")
    return lines[0].split(" ", 1)[1]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="mip-bench-"))
    try:
        res: dict = {"mpy_version": board_mpy_version(), "installed_bytes": {},
                     "cycle_import_kb": {}, "per_module_kb": {}, "cycle_import_ms": {},
                     "min_heap_import_kb": {}, "min_heap_cycle_kb": {}}
        with serve(build_index(work / "index")) as url:
            libs = {"mpy": installed(url, work / "mpy"), "py": installed(url, work / "py", mpy=False)}
        (work / "empty").mkdir()
        empty = int(value(on_board(work / "empty", USED), "used_bytes"))
        for form, lib in libs.items():
            res["installed_bytes"][form] = {"fota": folder_bytes(lib / "fota"),
                                            "umqtt": folder_bytes(lib / "umqtt"),
                                            "files": sum(1 for p in lib.rglob("*") if p.is_file())}
            used = int(value(on_board(lib, USED), "used_bytes"))
            res["installed_bytes"][form]["flash_kb"] = round((used - empty) / 1024, 1)
            res["cycle_import_kb"][form] = round(float(value(on_board(lib, MODULES), "modules_kb")), 1)
            per = json.loads(value(on_board(lib, PER_MODULE), "per_module"))
            res["per_module_kb"][form] = {name: round(n / 1024, 1) for name, n in per}
            res["cycle_import_ms"][form] = min(float(value(on_board(lib, TIMED), "import_ms"))
                                               for _ in range(3))
            res["min_heap_import_kb"][form] = smallest(
                lambda kb, lib=lib: on_board(lib, MODULES, kb) is not None, 8, 512)
        home = work / "home"
        daemon.start(home)
        try:
            backend = LocalBackend(home)
            image = build_app_image("1.0.1", size=1_500_000)
            (work / "image.bin").write_bytes(image)
            for form, lib in libs.items():
                res["min_heap_cycle_kb"][form] = smallest(
                    lambda kb, form=form, lib=lib: run_cycle(backend, home, work, image,
                                                             f"bench/{form}-{kb}.bin", kb, lib=lib),
                    8, 256)
        finally:
            daemon.stop(home)
        m, p = res["installed_bytes"]["mpy"], res["installed_bytes"]["py"]
        res["ratios"] = {
            "installed_py_vs_mpy": round((p["fota"] + p["umqtt"]) / (m["fota"] + m["umqtt"]), 2),
            "cycle_import_py_vs_mpy": round(res["cycle_import_kb"]["py"] / res["cycle_import_kb"]["mpy"], 2),
            "min_heap_import_py_vs_mpy": round(res["min_heap_import_kb"]["py"]
                                               / res["min_heap_import_kb"]["mpy"], 2),
            "min_heap_cycle_py_vs_mpy": round(res["min_heap_cycle_kb"]["py"]
                                              / res["min_heap_cycle_kb"]["mpy"], 2),
            "cycle_import_time_py_vs_mpy": round(res["cycle_import_ms"]["py"]
                                                 / res["cycle_import_ms"]["mpy"], 1),
        }
        res["word_bytes"] = word_bytes()
        print(json.dumps(res, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
