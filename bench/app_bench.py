"""Benchmark of application updates against firmware updates, and of running an application
in place from ROMFS against importing the same .mpy files from the filesystem.

Figures (printed as JSON), all measured in this run on the emulated FOTA_ESP32 board (the
project's partition table with its ROMFS slots) against the local AWS IoT stand-in:
- `update`: the same change (one constant of the demo application, tools/demoapp/) shipped two
  ways. `app`: `fota build --app` (a ROMFS image of the application's .mpy files) into the
  other application slot; `firmware`: a firmware image with the application frozen in (1.5 MB,
  the size of a MicroPython ESP32 firmware) into the other OTA slot. For each: the bytes
  downloaded (`bc_size`), the seconds from `fota publish` to SUCCEEDED (download, write, check,
  trial boot, confirm: a reboot and a new MQTT session both times), and the flash work by the
  datasheet model (bytes written, erases, modelled seconds). `ratios` divides firmware by app.
- `ram`: what `import app` costs in the heap (gc.mem_alloc() before and after, collected),
  for the demo application and for a larger one (lib/'s ecdsa, fotaplan and romimage modules,
  about 7 KB of .mpy): `rom_bytes` mounted from the ROMFS slot (bytecode runs in place),
  `fs_bytes` the same .mpy files imported from the littlefs filesystem (read into the heap),
  `saved_bytes` the difference. The unix port is 64-bit, so the objects an import makes
  (module dicts, functions) are up to twice their ESP32 size; bytecode is bytes either way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import demo  # noqa: E402  (tools/demo.py: the same steps as `make demo`)
from emulator import norflash  # noqa: E402
from emulator.device import Device  # noqa: E402
from emulator.flash import create_flash  # noqa: E402
from emulator.image import build_app_image  # noqa: E402
from fotatools.appimage import build_romfs, romfs_files  # noqa: E402

LARGE_APP = ("ecdsa.py", "plan.py", "romimage.py")  # modules of lib/fota/, as an application's own
MEASURE = """import gc, sys
{path}
gc.collect()
a = gc.mem_alloc()
import app
gc.collect()
print("import_bytes", gc.mem_alloc() - a)
"""


def wait_job(home: Path, job: str, dev: Device, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = demo.fota(home, "status", job, "--json", check=False, quiet=True)
        ex = json.loads(p.stdout)["executions"][0] if p.stdout.strip() else {}
        if ex.get("status") not in (None, "QUEUED", "IN_PROGRESS"):
            return ex
        if not dev.running:
            raise SystemExit("bench: the device stopped:\n" + dev.console[-2000:])
        time.sleep(0.2)
    raise SystemExit(f"bench: job {job} did not end within {timeout:.0f} s")


def flash_work(dev: Device) -> dict:
    return norflash.read_stats(dev.state / norflash.STATS_FILE)


def measured(home: Path, dev: Device, job: str, size: int, t0: float, before: dict,
             timeout: float) -> dict:
    ex = wait_job(home, job, dev, timeout)
    if ex["status"] != "SUCCEEDED":
        raise SystemExit(f"bench: job {job} ended {ex['status']} {ex.get('status_details')}")
    seconds = time.monotonic() - t0
    after = flash_work(dev)
    return {"bytes": size, "seconds": round(seconds, 2),
            "flash_bytes_written": after["bytes_written"] - before["bytes_written"],
            "flash_erases": (after["sector_erases"] + after["block_erases"]
                             - before["sector_erases"] - before["block_erases"]),
            "flash_model_s": round((after["time_us"] - before["time_us"]) / 1e6, 2)}


def changed_app(work: Path, every: int) -> Path:
    folder = work / f"app-every-{every}" / "demoapp"
    shutil.copytree(demo.DEMO_APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    src = (folder / "app.py").read_text()
    (folder / "app.py").write_text(src.replace("EVERY = 3", f"EVERY = {every}"))
    return folder


def update_figures(work: Path, timeout: float) -> dict:
    home = work / "home"
    demo.fota(home, "cloud", "start", quiet=True)
    dev = None
    try:
        fs = demo.device_folder(work, home)
        flash = work / "flash.bin"
        create_flash(flash, build_app_image("1.0.0", size=demo.IMAGE_SIZE), romfs=True)
        dev = Device(flash, fs, heapsize="256k", echo=None)
        dev.start()
        demo.wait_console(dev, "app: firmware 1.0.0", 60)
        # the application the change starts from
        job, _ = _publish_app(home, work, changed_app(work, 3), "1.0.0")
        measured(home, dev, job, 0, time.monotonic(), flash_work(dev), timeout)
        demo.wait_console(dev, "application 1.0.0", 60)
        # the change as an application update
        before, t0 = flash_work(dev), time.monotonic()
        job, size = _publish_app(home, work, changed_app(work, 4), "1.0.1")
        app = measured(home, dev, job, size, t0, before, timeout)
        # the same change as a firmware update, the application frozen in
        folder = changed_app(work, 5)
        payload = {p.name: p.read_text() for p in folder.glob("*.py")}
        before, t0 = flash_work(dev), time.monotonic()
        image = work / "fw-1.0.1.bin"
        image.write_bytes(build_app_image("1.0.1", payload=payload, size=demo.IMAGE_SIZE))
        out = work / "rel-fw"
        demo.fota(home, "build", str(image), "--out", str(out), quiet=True)
        p = demo.fota(home, "publish", str(next(out.glob("*.json"))), "--thing", demo.THING,
                      "--json", quiet=True)
        fw = measured(home, dev, json.loads(p.stdout)["job_id"], len(image.read_bytes()), t0,
                      before, timeout)
    finally:
        if dev is not None:
            dev.stop()
        demo.fota(home, "cloud", "stop", check=False, quiet=True)
    return {"app": app, "firmware": fw,
            "ratios": {k: round(fw[k] / app[k], 1) for k in ("bytes", "seconds",
                                                           "flash_bytes_written", "flash_model_s")
                       if app[k]}}


def _publish_app(home: Path, work: Path, folder: Path, version: str) -> tuple[str, int]:
    out = work / f"rel-app-{version}"
    demo.fota(home, "build", "--app", str(folder), "--version", version, "--out", str(out),
              quiet=True)
    manifest = next(out.glob("*.json"))
    p = demo.fota(home, "publish", str(manifest), "--thing", demo.THING, "--json", quiet=True)
    return json.loads(p.stdout)["job_id"], json.loads(manifest.read_text())["size"]


def import_bytes(work: Path, image: bytes, rom: bool) -> int:
    """`import app` on a fresh FOTA_ESP32 board: from ROMFS slot 0 (mounted at /rom at boot)
    or from the same .mpy files in /appfs on the filesystem."""
    tag = "rom" if rom else "fs"
    flash, fs = work / f"ram-{tag}.bin", work / f"ram-{tag}"
    create_flash(flash, build_app_image("1.0.0"), romfs=True,
                 romfs_slots={0: image} if rom else None)
    fs.mkdir()
    if not rom:
        for path, data in romfs_files(image).items():
            (fs / "appfs" / path).parent.mkdir(parents=True, exist_ok=True)
            (fs / "appfs" / path).write_bytes(data)
    path = "" if rom else 'sys.path.insert(0, "/appfs")'
    (fs / "main.py").write_text(MEASURE.format(path=path))
    result = Device(flash, fs, heapsize="256k", echo=None).run(max_boots=1, timeout=60)
    for line in result.console.splitlines():
        if line.startswith("import_bytes "):
            return int(line.split()[1])
    raise SystemExit(f"bench: the board printed no import figure:\n{result.console[-2000:]}")


def ram_figures(work: Path) -> dict:
    large = work / "large-app"
    large.mkdir()
    for name in LARGE_APP:
        shutil.copy(ROOT / "lib" / "fota" / name, large / name)
    (large / "app.py").write_text("".join(f"import {n[:-3]}\n" for n in LARGE_APP))
    out = {}
    for name, folder in (("demo_app", demo.DEMO_APP), ("large_app", large)):
        image = build_romfs(folder)
        rom, fs = import_bytes(work / name, image, True), import_bytes(work / name, image, False)
        out[name] = {"image_bytes": len(image), "rom_bytes": rom, "fs_bytes": fs,
                     "saved_bytes": fs - rom}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=240, help="seconds allowed per update")
    ap.add_argument("--ram-only", action="store_true", help="only the import figures")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fota-app-bench-"))
    res: dict = {}
    try:
        for sub in ("demo_app", "large_app"):
            (work / sub).mkdir()
        with contextlib.redirect_stdout(sys.stderr):  # the demo helpers' lines: not the JSON
            res["ram"] = ram_figures(work)
            if not args.ram_only:
                res["update"] = update_figures(work, args.timeout)
        print(json.dumps(res, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
