"""The whole update cycle on one machine: `make demo`.

Starts the local AWS IoT stand-in, provisions a thing (its signer: a code-signing certificate),
boots an emulated ESP32 on firmware 1.0.0 running the project's boot.py and main.py, then
publishes signed releases with the `fota` command: 1.0.1, which the device downloads, boots and
confirms (job SUCCEEDED), and 1.0.2, whose self-test fails, so the bootloader rolls it back to
1.0.1 (job FAILED with the reason). Then the application apart from the firmware (`fota build
--app`): application 1.0.0, a ROMFS image of a few kilobytes (SUCCEEDED in seconds, the firmware
untouched), and 1.0.1, whose import fails on its trial boot, so the device goes back to
application 1.0.0 (FAILED). Then a secondary MCU (simulated MCUboot with an SMP server) on the
board's UART1: an MCUboot image 1.1.0 goes through the board over the UART, the MCU test-boots
it and the board confirms it once it reads back 1.1.0 (SUCCEEDED); then 1.2.0, whose application
hangs at start until its watchdog resets the MCU, so MCUboot reverts it (FAILED with the
reason). The secondary act is skipped, with the reason, when a piece it needs is missing. After
the firmware and application acts `fota things` shows what the board reported to its device
shadow: the firmware and application it runs, its last job and how it ended. Exits 0 only if
every outcome was observed. Everything it starts, it stops; the state (shadows included) stays
in the work folder's home.

`make demo CHIP=esp32s3` (8 MB of flash, MicroPython's 8MiBplus OTA table) or `CHIP=esp32c3`
runs the same acts on an emulated ESP32-S3 or ESP32-C3: the images are built for that chip
(`fota build --chip`), and the ROM's, the bootloader's and the runner's banners name it, as
the demo's own lines do (the board's console lines are prefixed with the chip).
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

from emulator import chips  # noqa: E402
from emulator.device import Device  # noqa: E402
from emulator.flash import Flash, create_flash  # noqa: E402
from emulator.image import build_app_image  # noqa: E402

FOTA = str(Path(sys.executable).parent / "fota")
THING = "demo-esp32"  # "demo-" and the chip: main() sets it for --chip
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

    def __init__(self, prefix: str = "esp32") -> None:
        self.prefix = prefix  # the chip: "  esp32s3 | ..."
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
                self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"  {self.prefix} | download",
                                file=sys.stdout, leave=True,
                                ncols=min(shutil.get_terminal_size().columns or 80, 100))
            self.bar.update(done - self.bar.n)
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"  {self.prefix} | {line}", flush=True)

    def flush(self) -> None:
        sys.stdout.flush()


def signer(work: Path) -> tuple[Path, Path]:
    """The fleet's code-signing key and its certificate (self-signed here; on AWS, the one
    imported into ACM for code signing)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "demo code signing")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = work / "signer.key.pem", work / "signer.crt.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


# The demo board's main.py when it has a secondary MCU: the project's main.py, with the
# secondary on UART1 registered for the files of id 1 (docs: "Wiring a real secondary MCU").
# Its pins (TX, RX) differ per chip: GPIO17 and 16 on the ESP32; on the ESP32-S3 GPIO17 and 18,
# UART1's own pins in its IO MUX; on the ESP32-C3 GPIO4 and 5 through the GPIO matrix (its
# GPIO12-17 are the SPI flash's, GPIO20 and 21 UART0's).
RUN = "fota.run(selftest=checks and checks.run)\n"
assert RUN in (ROOT / "main.py").read_text(), "main.py no longer calls " + RUN
UART1_PINS = {"esp32": (17, 16), "esp32s3": (17, 18), "esp32c3": (4, 5)}


def secondary_main(chip: str) -> str:
    tx, rx = UART1_PINS[chip]
    return (ROOT / "main.py").read_text().replace(RUN, f"""import machine
from fota.target import SmpTarget

fota.run(selftest=checks and checks.run,
         targets={{1: SmpTarget(machine.UART(1, 115200, tx={tx}, rx={rx}))}})
""")


def device_folder(work: Path, home: Path, cert: Path | None = None,
                  secondary: bool = False, chip: str = "esp32") -> Path:
    """boot.py, main.py, lib/ (with umqtt) and the provisioned config and credentials; with
    `cert`, the signer every release must be signed by."""
    fs = work / "fs"
    fota(home, "provision", THING, "--out", _rel(fs), *(["--signer", _rel(cert)] if cert else []))
    shutil.copy(ROOT / "boot.py", fs / "boot.py")
    if secondary:
        (fs / "main.py").write_text(secondary_main(chip))
    else:
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


def shadow_shows(home: Path, job: str, timeout: float) -> dict[str, Any]:
    """The board as `fota things --json` shows it from its device shadow, once the shadow
    reports `job` (the board reports after the job ended); {} if it never did."""
    deadline = time.monotonic() + timeout
    while True:
        p = fota(home, "things", "--json", check=False, quiet=True)
        rows = [t for t in json.loads(p.stdout) if t["thing"] == THING] if p.returncode == 0 else []
        if rows and rows[0]["job_id"] == job:
            return rows[0]
        if time.monotonic() > deadline:
            return {}
        time.sleep(0.5)


def wait_console(dev: Device, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in dev.console:
        if time.monotonic() > deadline or not dev.running:
            raise SystemExit(f"demo: the device never printed {text!r}")
        time.sleep(0.2)


def publish(home: Path, work: Path, version: str, payload: dict[str, str] | None,
            key: Path, chip: str = "esp32") -> str:
    image = work / f"micropython-{version}.bin"
    if chip == "esp32":
        image.write_bytes(build_app_image(version, payload=payload, size=IMAGE_SIZE))
        fota(home, "build", _rel(image), "--out", _rel(work / f"release-{version}"), "--sign",
             _rel(key))
    else:
        image.write_bytes(build_app_image(version, payload=payload, size=IMAGE_SIZE, chip=chip))
        fota(home, "build", _rel(image), "--chip", chip, "--out", _rel(work / f"release-{version}"),
             "--sign", _rel(key))
    manifest = _rel(next((work / f"release-{version}").glob("*.json")))
    print(f"$ fota publish {manifest} --thing {THING}", flush=True)
    p = fota(home, "publish", manifest, "--thing", THING, "--json", quiet=True)
    job = json.loads(p.stdout)["job_id"]
    print(f"  job {job}", flush=True)
    return job


# -- the secondary MCU act ------------------------------------------------------------------
IMGTOOL = str(Path(sys.executable).parent / "imgtool")
SECONDARY_BODY = 24_000
WATCHDOG_MS = 500  # the secondary application's watchdog period


def secondary_missing() -> str | None:
    """What the secondary act needs and this tree does not have, or None."""
    try:
        from emulator.secondary import Secondary  # noqa: F401
    except ImportError:
        return "the simulated secondary MCU (emulator/secondary)"
    target = ROOT / "lib" / "fota" / "target.py"
    if not target.exists() or "class SmpTarget" not in target.read_text():
        return "the device's secondary-MCU target (lib/fota/target.py SmpTarget)"
    if not Path(IMGTOOL).exists():
        return "MCUboot's imgtool (pip install imgtool)"
    return None


def mcu_version(mcu: Any) -> str | None:
    """The version in the secondary MCU's primary slot (the image it boots)."""
    from emulator.secondary import mcuimage

    try:
        return mcuimage.parse(mcu.slot("primary"))[0].version_str
    except mcuimage.Refused:
        return None


def mcu_state(mcu: Any) -> str:
    status = mcu.status()
    ok = (status.get("trailers") or {}).get("primary", {}).get("image_ok")
    return (f"primary slot: {mcu_version(mcu)}, {'confirmed' if ok else 'not confirmed'}; "
            f"{status.get('boots')} boots")


def mcuboot_image(work: Path, version: str, mcu_key: Path, hangs: bool = False) -> Path:
    """The secondary's application, signed for MCUboot by imgtool. `hangs`: it hangs as it
    starts, until its watchdog resets the MCU (the simulator's `mcusim:hang` marker)."""
    import random

    folder = work / f"secondary-{version}"
    folder.mkdir()
    body = folder / "secondary.bin"
    rnd = random.Random(version)
    body.write_bytes(f"secondary app {version}\n".encode() + (b"mcusim:hang\n" if hangs else b"")
                     + bytes(rnd.getrandbits(8) for _ in range(SECONDARY_BODY)))
    out = folder / "secondary.signed.bin"
    subprocess.run([IMGTOOL, "sign", "-k", str(mcu_key), "--header-size", "0x200",
                    "--pad-header", "--align", "4", "--version", version,
                    "--slot-size", "0x40000", str(body), str(out)],
                   check=True, capture_output=True)
    return out


def publish_secondary(home: Path, work: Path, version: str, mcu_key: Path, key: Path,
                      hangs: bool = False) -> str:
    image = mcuboot_image(work, version, mcu_key, hangs)
    p = fota(home, "build", _rel(image), "--out", _rel(work / f"secondary-release-{version}"),
             "--json", quiet=True)
    manifest = json.loads(p.stdout)
    print(f"$ fota build {_rel(image)}\n  {manifest['kind']} image, version {manifest['version']} "
          f"(from its header), {manifest['size']} bytes", flush=True)
    args = ["publish", "--file", f"1={_rel(Path(manifest['manifest']))}", "--sign", _rel(key),
            "--thing", THING]
    print("$ fota " + " ".join(args), flush=True)
    p = fota(home, *args, "--json", quiet=True)
    out = json.loads(p.stdout)
    doc = out["document"]["afr_ota"]
    print(f"  job {out['job_id']}: afr_ota over stream {doc['streamname']}, files "
          + ", ".join(f"{f['fileid']}={f['filepath']} ({f['filesize']} bytes)" for f in doc["files"]),
          flush=True)
    return str(out["job_id"])


# The demo's application (tools/demoapp/: a sensor, a filter, the module main.py imports);
# 1.0.1 needs a driver that is not there, so its import fails on the trial boot.
DEMO_APP = ROOT / "tools" / "demoapp"
BROKEN_IMPORT = "import sensor_driver  # not on the device\n"


def publish_app(home: Path, work: Path, version: str, broken: bool, key: Path) -> tuple[str, int]:
    folder = work / f"demoapp-{version}" / "demoapp"
    shutil.copytree(DEMO_APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if broken:
        (folder / "app.py").write_text(BROKEN_IMPORT + (folder / "app.py").read_text())
    out = work / f"release-app-{version}"
    fota(home, "build", "--app", _rel(folder), "--version", version, "--out", _rel(out),
         "--sign", _rel(key))
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
    ap.add_argument("--chip", default="esp32", choices=sorted(chips.CHIPS),
                    help="the emulated board's chip (default esp32; esp32s3 has 8 MB of flash)")
    args = ap.parse_args(argv)
    chip = chips.get(args.chip)
    global THING
    THING = f"demo-{chip.key}"
    work: Path = args.work.resolve()
    home = work / "home"
    if home.exists():
        fota(home, "cloud", "stop", check=False, quiet=True)  # whatever an interrupted run left
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    outcomes: dict[str, str] = {}
    sizes: dict[str, str] = {}
    app_running = mcu_running = None
    dev: Device | None = None
    mcu: Any = None
    missing = secondary_missing()
    try:
        say("Starting the local AWS IoT stand-in (mosquitto with TLS and per-thing ACLs, jobs service, object store)")
        fota(home, "cloud", "start")
        say(f"Provisioning thing {THING} and its device folder; its signer is a code-signing certificate")
        key, cert = signer(work)
        fs = device_folder(work, home, cert, missing is None, chip.key)
        uarts: dict[int, str] = {}
        mcu_key = work / "mcu-key.pem"
        if missing is None:
            from emulator.secondary import Secondary

            tx, rx = UART1_PINS[chip.key]
            say(f"Powering a secondary MCU (MCUboot, SMP server) on the {chip.name}'s UART1 "
                f"(TX GPIO{tx}, RX GPIO{rx}); it runs 0.1.0")
            subprocess.run([IMGTOOL, "keygen", "-k", str(mcu_key), "-t", "ecdsa-p256"], check=True)
            mcu = Secondary(work / "mcu", key=mcu_key, watchdog_ms=WATCHDOG_MS).start()
            uarts = {1: mcu.port}
        board = "MicroPython's stock OTA table, no ROMFS" if args.stock else \
            f"this project's {chip.fota_build} table, with ROMFS slots"
        flash = work / "flash.bin"
        if chip.key == "esp32":
            say(f"Flashing firmware 1.0.0 into ota_0 of an emulated ESP32 ({board}) and booting it")
            create_flash(flash, build_app_image("1.0.0", size=IMAGE_SIZE), romfs=not args.stock)
            dev = Device(flash, fs, heapsize="256k", echo=Console(chip.key), uarts=uarts)  # type: ignore[arg-type]
        else:
            mb = chip.flash_mb[0]
            say(f"Flashing firmware 1.0.0 into ota_0 of an emulated {chip.name} with {mb} MB of "
                f"flash ({board}; bootloader at 0x{chip.bootloader:x}) and booting it")
            create_flash(flash, build_app_image("1.0.0", size=IMAGE_SIZE, chip=chip.key),
                         mb * chips.MiB, romfs=not args.stock, chip=chip.key)
            dev = Device(flash, fs, heapsize="256k", echo=Console(chip.key), uarts=uarts,  # type: ignore[arg-type]
                         chip=chip.key)
        dev.start()
        wait_console(dev, "app: firmware 1.0.0", 30)

        say("Publishing firmware 1.0.1")
        job = publish(home, work, "1.0.1", None, key, chip.key)
        ex = follow(home, job, dev, args.timeout)
        wait_console(dev, "app: firmware 1.0.1", 30)
        outcomes["1.0.1"] = f"{ex['status']} {ex.get('status_details', {})}"
        fota(home, "status", job, check=False)
        shown = shadow_shows(home, job, 30)
        fota(home, "things", check=False)
        outcomes["shadow 1.0.1"] = f"firmware {shown.get('firmware')}, application {shown.get('application')}"

        say("Publishing firmware 1.0.2, whose self-test fails")
        job = publish(home, work, "1.0.2", {"checks.py": BROKEN_SELFTEST}, key, chip.key)
        ex = follow(home, job, dev, args.timeout)
        outcomes["1.0.2"] = f"{ex['status']} {ex.get('status_details', {})}"
        fota(home, "status", job, check=False)
        time.sleep(1.0)
        running = Flash(flash).app_desc(Flash(flash).boot_slot())["version"]

        say("Publishing application 1.0.0 alone (the firmware stays 1.0.1)")
        t0 = time.monotonic()
        job, size = publish_app(home, work, "1.0.0", False, key)
        ex = follow(home, job, dev, args.timeout)
        app_s = time.monotonic() - t0
        outcomes["app 1.0.0"] = f"{ex['status']} {ex.get('status_details', {})}"
        sizes["app 1.0.0"] = f"{size} bytes in {app_s:.1f} s"
        wait_console(dev, "application 1.0.0", 30)

        say("Publishing application 1.0.1, whose import fails")
        job, size = publish_app(home, work, "1.0.1", True, key)
        ex = follow(home, job, dev, args.timeout)
        outcomes["app 1.0.1"] = f"{ex['status']} {ex.get('status_details', {})}"
        fota(home, "status", job, check=False)
        time.sleep(1.0)
        app_running = json.loads(Flash(flash).read_file("apps.json"))
        app_running = app_running["versions"][app_running["slot"]]
        shown = shadow_shows(home, job, 30)
        fota(home, "things", check=False)
        outcomes["shadow"] = f"firmware {shown.get('firmware')}, application {shown.get('application')}"

        if missing is not None:
            say(f"Skipping the secondary MCU act: this tree lacks {missing}")
        else:
            say("Publishing MCUboot image 1.1.0 for the secondary MCU (file id 1)")
            job = publish_secondary(home, work, "1.1.0", mcu_key, key)
            ex = follow(home, job, dev, args.timeout)
            outcomes["secondary 1.1.0"] = f"{ex['status']} {ex.get('status_details', {})}"
            print(f"  mcu   | {mcu_state(mcu)}", flush=True)

            say("Publishing secondary image 1.2.0, whose application hangs at start: "
                "MCUboot reverts it")
            job = publish_secondary(home, work, "1.2.0", mcu_key, key, hangs=True)
            ex = follow(home, job, dev, args.timeout)
            outcomes["secondary 1.2.0"] = f"{ex['status']} {ex.get('status_details', {})}"
            print(f"  mcu   | {mcu_state(mcu)}", flush=True)
            mcu_running = mcu_version(mcu)
    finally:
        if dev is not None:
            dev.stop()
        if mcu is not None:
            mcu.close()
        if home.exists():
            fota(home, "cloud", "stop", check=False, quiet=True)

    ok = outcomes.get("1.0.1", "").startswith("SUCCEEDED") and \
        outcomes.get("1.0.2", "").startswith("FAILED") and running == "1.0.1" and \
        outcomes.get("app 1.0.0", "").startswith("SUCCEEDED") and \
        outcomes.get("app 1.0.1", "").startswith("FAILED") and app_running == "1.0.0" and \
        outcomes.get("shadow 1.0.1", "").startswith("firmware 1.0.1,") and \
        outcomes.get("shadow") == f"firmware {running}, application {app_running}"
    if missing is None:
        ok = ok and outcomes.get("secondary 1.1.0", "").startswith("SUCCEEDED") and \
            outcomes.get("secondary 1.2.0", "").startswith("FAILED") and mcu_running == "1.1.0"
    say("Summary" if chip.key == "esp32" else f"Summary: an emulated {chip.name} "
        f"({chip.machine(not args.stock)})")
    for name in ("1.0.1", "1.0.2"):
        print(f"  firmware {name}: {outcomes.get(name)}")
    for name in ("app 1.0.0", "app 1.0.1"):
        extra = f" ({sizes[name]})" if name in sizes else ""
        print(f"  application {name[4:]}: {outcomes.get(name)}{extra}")
    for name in ("secondary 1.1.0", "secondary 1.2.0"):
        if name in outcomes:
            print(f"  {name}: {outcomes[name]}")
    print(f"  the device runs firmware {running}, from {Flash(flash).boot_slot()}, and "
          f"application {app_running}")
    print(f"  its device shadow says: {outcomes.get('shadow')} (kept in {_rel(home)}: "
          f"`fota --home {_rel(home)} cloud start`, then `fota --home {_rel(home)} things`)")
    if missing is None:
        print(f"  the secondary MCU runs {mcu_running}")
    else:
        print(f"  secondary MCU act skipped: this tree lacks {missing}")
    print("  demo passed: updates succeeded and bad ones were rolled back" if ok
          else "  demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
