"""A simulated device on the local AWS IoT stand-in: flash, filesystem, thing, jobs."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from emulator.device import Device, RunResult
from emulator import flashfs
from emulator.flash import Flash, create_flash
from emulator.image import build_app_image
from fotatools.backend import Execution, Rollout
from fotatools.cloud.client import LocalBackend
from fotatools.provisioning import write_device_folder

ROOT = Path(__file__).resolve().parents[2]

# A test application: connect, run the FOTA flow once, return (the emulator run then ends).
ONCE = """
import fota
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs

conn = Connection(load_config())
conn.connect()
jobs = Jobs(conn)
if fota.testing():
    from fota import selftest
    ok, why = selftest.run(jobs)
    try:
        import checks  # the firmware's own self-test, when its build froze one
    except ImportError:
        checks = None
    if ok and checks:
        ok, why = checks.run(jobs)
    print("app: self-test", ok, why)
    if not ok:
        fota.reject("self-test failed: " + why)
fota.handle_fota_jobs(jobs, force=True)
print("app: done", fota.version())
"""


def device_folder(fs: Path, main: str) -> Path:
    """A device folder with this project's lib/ and `main` as main.py (no credentials)."""
    shutil.copytree(ROOT / "lib", fs / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    (fs / "main.py").write_text(main)
    return fs


def frozen_library(**replace: str) -> dict[str, str]:
    """The frozen modules of the project's firmware (its manifest freezes lib/ and the port's
    umqtt.simple), with the modules named in `replace` (fota's, by module name) given other
    source: a new firmware whose library is broken."""
    out = {f"fota/{p.name}": p.read_text() for p in (ROOT / "lib" / "fota").glob("*.py")}
    out["umqtt/simple.py"] = (ROOT / ".deps" / "umqtt" / "simple.py").read_text()
    for name, src in replace.items():
        assert f"fota/{name}.py" in out, name
        out[f"fota/{name}.py"] = src
    return out


def firmware(version: str, size: int = 300_000, payload: dict[str, str] | None = None,
             chip: str | None = None) -> bytes:
    return build_app_image(version, size=size, payload=payload, chip=chip)


class Rig:
    """One thing with its own flash and device folder, provisioned on the local stand-in.

    The device folder (`fs`) is what the user keeps on the computer: every run copies it onto
    the flash filesystem first (as mpremote cp). What the board wrote is on the flash:
    read it with file(); put a file there alone with put_file()."""

    def __init__(self, cloud: LocalBackend, home: Path, folder: Path, version: str = "1.0.0",
                 app: str = ONCE, image: bytes | None = None, chip: str = "esp32",
                 flash_mb: int = 4) -> None:
        self.cloud = cloud
        self.thing = f"dev-{uuid.uuid4().hex[:8]}"
        self.folder = folder
        self.fs = folder / "fs"
        self.flash = folder / "flash.bin"
        shutil.copytree(ROOT / "lib", self.fs / "lib")
        shutil.copytree(ROOT / ".deps" / "umqtt", self.fs / "lib" / "umqtt")
        shutil.copy(ROOT / "boot.py", self.fs / "boot.py")
        (self.fs / "main.py").write_text(app)
        write_device_folder(cloud.provision(self.thing), self.fs, home)
        self.chip = chip  # the board's chip; its flash laid out for it (emulator/chips.py)
        if chip == "esp32":
            create_flash(self.flash, image or firmware(version))
        else:
            create_flash(self.flash, image or firmware(version, chip=chip), flash_mb << 20,
                         chip=chip)

    def file(self, path: str) -> bytes | None:
        """A file of the board's flash filesystem, or None if it has none of that name."""
        f = Flash(self.flash)
        return f.read_file(path) if f.has_file(path) else None

    def put_file(self, path: str, data: str | bytes) -> None:
        """Copy one file onto the board's flash filesystem (not into the device folder)."""
        flashfs.install(self.flash, self.fs)
        fs = flashfs.FlashFS(self.flash)
        fs.write_file(path, data.encode() if isinstance(data, str) else data)
        fs.save()

    def running_slot_bytes(self) -> bytes:
        f = Flash(self.flash)
        return f.slot_bytes(f.boot_slot())

    def boot_slot(self) -> str:
        return Flash(self.flash).boot_slot()

    def version(self) -> str:
        f = Flash(self.flash)
        return f.app_desc(f.boot_slot())["version"]

    def publish(self, image: bytes, **doc: Any) -> str:
        """Upload the image and create a FOTA job for this thing; `doc` overrides fields."""
        path = self.folder / f"upload-{uuid.uuid4().hex[:6]}.bin"
        path.write_bytes(image)
        url = self.cloud.upload(path, f"fw/{path.name}")
        document = {"operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(image).hexdigest(),
                    "bc_size": len(image), "bc_url": "${aws:iot:s3-presigned-url:%s}" % url}
        for k, v in doc.items():
            if v is None:
                document.pop(k, None)
            else:
                document[k] = v
        job_id = f"job-{uuid.uuid4().hex[:10]}"
        self.cloud.create_job(job_id, [self.cloud.thing_arn(self.thing)], document, Rollout())
        return job_id

    def execution(self, job_id: str) -> Execution:
        (ex,) = [e for e in self.cloud.list_executions(job_id) if e.thing_name == self.thing]
        return ex

    def run(self, max_boots: int = 4, timeout: float = 120, cut_at: int | None = None,
            **kw: Any) -> RunResult:
        kw.setdefault("chip", self.chip)
        with Device(self.flash, self.fs, heapsize=kw.pop("heapsize", "256k"), echo=None, **kw) as dev:
            r = dev.run(max_boots=max_boots, timeout=timeout, cut_at=cut_at)
        return r
