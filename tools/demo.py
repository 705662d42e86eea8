"""The whole update cycle on one machine: `make demo`.

Starts the local AWS IoT stand-in, provisions a thing, boots an emulated ESP32 on firmware
1.0.0 running the project's boot.py and main.py, then publishes with the `fota` command:
1.0.1, which the device downloads, boots and confirms (job SUCCEEDED), and 1.0.2, whose
self-test fails, so the bootloader rolls it back to 1.0.1 (job FAILED with the reason).
Then the application apart from the firmware (`fota build --app`): application 1.0.0, a
ROMFS image of a few kilobytes (SUCCEEDED in seconds, the firmware untouched), and 1.0.1,
whose import fails on its trial boot, so the device goes back to application 1.0.0 (FAILED).
Exits 0 only if all four outcomes were observed. Everything it starts, it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives beside the host tools, not in their package

from tqdm import tqdm  # noqa: E402

from emulator.device import Device  # noqa: E402
from emulator.flash import Flash, create_flash  # noqa: E402
from emulator.image import build_app_image  # noqa: E402

FOTA = str(Path(sys.executable).parent / "fota")
THING = "demo-esp32"
IMAGE_SIZE = 1_500_000
# 1.0.2's frozen self-test fails, as a firmware whose sensor driver broke would.
BROKEN_SELFTEST = '''
def run(jobs):
    return False, "sensor bus did not answer"
'''
PROGRESS = re.compile(r"fota: \[download\] (\d+)% (\d+)/(\d+) bytes")


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def fota(home: Path, *args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    cmd = [FOTA, "--home", _rel(home), *args]
    if not quiet:
        print("$ fota " + " ".join(args), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if not quiet and p.stdout.strip():
        print("\n".join("  " + line for line in p.stdout.rstrip().splitlines()), flush=True)
    if check and p.returncode != 0:
        raise SystemExit(f"demo: `fota {' '.join(args)}` failed ({p.returncode}): {p.stderr.strip()}")
    return p


class Console:
    """Where the device's console goes: one prefixed line each, downloads as a progress bar."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        for line in text.splitlines():
            with self.lock:
                self._line(line)

    def _line(self, line: str) -> None:
        m = PROGRESS.search(line) if sys.stdout.isatty() else None
        if m:
            done, total = int(m.group(2)), int(m.group(3))
            if self.bar is None:
                self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="  esp32 | download",
                                file=sys.stdout, leave=True,
                                ncols=min(shutil.get_terminal_size().columns or 80, 100))
            self.bar.update(done - self.bar.n)
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"  esp32 | {line}", flush=True)

    def flush(self) -> None:
        sys.stdout.flush()


def device_folder(work: Path, home: Path) -> Path:
    """boot.py, main.py, lib/ (with umqtt) and the provisioned config and credentials."""
    fs = work / "fs"
    fota(home, "provision", THING, "--out", _rel(fs))
    shutil.copy(ROOT / "boot.py", fs / "boot.py")
    shutil.copy(ROOT / "main.py", fs / "main.py")
    shutil.copytree(ROOT / "lib", fs / "lib")
    shutil.copytree(ROOT / ".deps" / "umqtt", fs / "lib" / "umqtt")
    cfg = json.loads((fs / "config.json").read_text())
    cfg["telemetry_s"] = 10
    (fs / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return fs


def follow(home: Path, job: str, dev: Device, timeout: float) -> dict[str, Any]:
    """Print the job's execution state as it changes, until it ends; return the execution."""
    seen = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = fota(home, "status", job, "--json", check=False, quiet=True)
        if p.returncode == 2:
            raise SystemExit(f"demo: status failed: {p.stderr.strip()}")
        ex = json.loads(p.stdout)["executions"][0] if p.stdout.strip() else {}
        state = (ex.get("status"), json.dumps(ex.get("status_details", {}), sort_keys=True))
        if state != seen:
            seen = state
            print(f"  job   | {job}: {ex.get('status')} {ex.get('status_details', {})}", flush=True)
        if ex.get("status") not in (None, "QUEUED", "IN_PROGRESS"):
            return ex
        if not dev.running:
            raise SystemExit("demo: the device stopped:\n" + dev.console[-2000:])
        time.sleep(0.5)
    raise SystemExit(f"demo: job {job} did not end within {timeout:.0f} s")


def wait_console(dev: Device, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in dev.console:
        if time.monotonic() > deadline or not dev.running:
            raise SystemExit(f"demo: the device never printed {text!r}")
        time.sleep(0.2)


def publish(home: Path, work: Path, version: str, payload: dict[str, str] | None) -> str:
    image = work / f"micropython-{version}.bin"
    image.write_bytes(build_app_image(version, payload=payload, size=IMAGE_SIZE))
    fota(home, "build", _rel(image), "--out", _rel(work / f"release-{version}"))
    manifest = _rel(next((work / f"release-{version}").glob("*.json")))
    print(f"$ fota publish {manifest} --thing {THING}", flush=True)
    p = fota(home, "publish", manifest, "--thing", THING, "--json", quiet=True)
    job = json.loads(p.stdout)["job_id"]
    print(f"  job {job}", flush=True)
    return job


# The demo's application (tools/demoapp/: a sensor, a filter, the module main.py imports);
# 1.0.1 needs a driver that is not there, so its import fails on the trial boot.
DEMO_APP = ROOT / "tools" / "demoapp"
BROKEN_IMPORT = "import sensor_driver  # not on the device\n"


def publish_app(home: Path, work: Path, version: str, broken: bool) -> tuple[str, int]:
    folder = work / f"demoapp-{version}" / "demoapp"
    shutil.copytree(DEMO_APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if broken:
        (folder / "app.py").write_text(BROKEN_IMPORT + (folder / "app.py").read_text())
    out = work / f"release-app-{version}"
    fota(home, "build", "--app", _rel(folder), "--version", version, "--out", _rel(out))
    manifest = next(out.glob("*.json"))
    size = json.loads(manifest.read_text())["size"]
    print(f"$ fota publish {_rel(manifest)} --thing {THING}", flush=True)
    p = fota(home, "publish", _rel(manifest), "--thing", THING, "--json", quiet=True)
    job = json.loads(p.stdout)["job_id"]
    print(f"  job {job} ({size} bytes)", flush=True)
    return job, size


def _rel(path: Path) -> str:
    """A path as the user would type it from where they ran the demo."""
    return os.path.relpath(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "demo", help="scratch folder")
    ap.add_argument("--timeout", type=float, default=180, help="seconds allowed per update")
    ap.add_argument("--stock", action="store_true",
                    help="a board without ROMFS (applications go into /app0, /app1)")
    args = ap.parse_args(argv)
    work: Path = args.work.resolve()
    home = work / "home"
    if home.exists():
        fota(home, "cloud", "stop", check=False, quiet=True)  # whatever an interrupted run left
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    outcomes: dict[str, str] = {}
    sizes: dict[str, str] = {}
    app_running = None
    dev: Device | None = None
    try:
        say("Starting the local AWS IoT stand-in (mosquitto with TLS and per-thing ACLs, jobs service, object store)")
        fota(home, "cloud", "start")
        say(f"Provisioning thing {THING} and its device folder")
        fs = device_folder(work, home)
        board = "MicroPython's stock OTA table, no ROMFS" if args.stock else \
            "this project's FOTA_ESP32 table, with ROMFS slots"
        say(f"Flashing firmware 1.0.0 into ota_0 of an emulated ESP32 ({board}) and booting it")
        flash = work / "flash.bin"
        create_flash(flash, build_app_image("1.0.0", size=IMAGE_SIZE), romfs=not args.stock)
        dev = Device(flash, fs, heapsize="256k", echo=Console())  # type: ignore[arg-type]
        dev.start()
        wait_console(dev, "app: firmware 1.0.0", 30)

        say("Publishing firmware 1.0.1")
        job = publish(home, work, "1.0.1", None)
        ex = follow(home, job, dev, args.timeout)
        wait_console(dev, "app: firmware 1.0.1", 30)
        outcomes["1.0.1"] = f"{ex['status']} {ex.get('status_details', {})}"
        fota(home, "status", job, check=False)

        say("Publishing firmware 1.0.2, whose self-test fails")
        job = publish(home, work, "1.0.2", {"selftest.py": BROKEN_SELFTEST})
        ex = follow(home, job, dev, args.timeout)
        outcomes["1.0.2"] = f"{ex['status']} {ex.get('status_details', {})}"
        fota(home, "status", job, check=False)
        time.sleep(1.0)
        running = Flash(flash).app_desc(Flash(flash).boot_slot())["version"]

        say("Publishing application 1.0.0 alone (the firmware stays 1.0.1)")
        t0 = time.monotonic()
        job, size = publish_app(home, work, "1.0.0", False)
        ex = follow(home, job, dev, args.timeout)
        app_s = time.monotonic() - t0
        outcomes["app 1.0.0"] = f"{ex['status']} {ex.get('status_details', {})}"
        sizes["app 1.0.0"] = f"{size} bytes in {app_s:.1f} s"
        wait_console(dev, "application 1.0.0", 30)

        say("Publishing application 1.0.1, whose import fails")
        job, size = publish_app(home, work, "1.0.1", True)
        ex = follow(home, job, dev, args.timeout)
        outcomes["app 1.0.1"] = f"{ex['status']} {ex.get('status_details', {})}"
        fota(home, "status", job, check=False)
        time.sleep(1.0)
        app_running = json.loads(Flash(flash).read_file("apps.json"))
        app_running = app_running["versions"][app_running["slot"]]
    finally:
        if dev is not None:
            dev.stop()
        if home.exists():
            fota(home, "cloud", "stop", check=False, quiet=True)

    ok = outcomes.get("1.0.1", "").startswith("SUCCEEDED") and \
        outcomes.get("1.0.2", "").startswith("FAILED") and running == "1.0.1" and \
        outcomes.get("app 1.0.0", "").startswith("SUCCEEDED") and \
        outcomes.get("app 1.0.1", "").startswith("FAILED") and app_running == "1.0.0"
    say("Summary")
    for name in ("1.0.1", "1.0.2"):
        print(f"  firmware {name}: {outcomes.get(name)}")
    for name in ("app 1.0.0", "app 1.0.1"):
        extra = f" ({sizes[name]})" if name in sizes else ""
        print(f"  application {name[4:]}: {outcomes.get(name)}{extra}")
    print(f"  the device runs firmware {running}, from {Flash(flash).boot_slot()}, and "
          f"application {app_running}")
    print("  demo passed: updates succeeded and bad ones were rolled back" if ok
          else "  demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
