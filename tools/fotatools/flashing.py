"""`fota flash`: the esptool and mpremote commands that set up a board from scratch.

Which address the firmware goes to is read from the file:
- a full flash image (bootloader first, a partition table 0x8000 bytes into the flash; what
  micropython.org ships as `ESP32_GENERIC-OTA-*.bin`) is written at the bootloader's address
  (0x1000 on ESP32 and ESP32-S2, 0x0 on later chips);
- an app image alone (an `esp_app_desc_t` at offset 32: `micropython.bin`, the `.app-bin`
  downloads, a `fota build` release) is written at 0x10000 (ota_0 in MicroPython's OTA layout)
  after erasing otadata (0xd000, 0x2000 bytes), so that the bootloader starts ota_0 whatever
  slot ran before. The board must already have a bootloader and an OTA partition table.

Then mpremote copies the device files: boot.py, main.py, lib/, umqtt (into lib/) and the device
folder made by `fota provision` (config.json, certs/), and resets the board.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .provisioning import check_device_folder
from .release import CHIP_IDS, IMAGE_MAGIC, ImageError, inspect_image

BOOTLOADER_OFFSET = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
PARTITION_TABLE = 0x8000
APP_OFFSET = 0x10000  # ota_0
APP_SLOT_SIZE = 0x180000  # MicroPython's OTA layout for 4 MB boards
OTADATA = (0xD000, 0x2000)
DEFAULT_BAUD = 460800


@dataclass
class FlashPlan:
    kind: str  # "full" or "app"
    offset: int
    commands: list[list[str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [shlex.join(c) for c in self.commands]


def firmware_kind(data: bytes, chip: str = "esp32") -> tuple[str, int]:
    """("app", 0x10000) or ("full", bootloader offset); ImageError for anything else."""
    try:
        app = inspect_image(data, chip)
    except ImageError as app_error:
        table = PARTITION_TABLE - BOOTLOADER_OFFSET[chip]
        if (len(data) > table + 32 and data[0] == IMAGE_MAGIC
                and data[table:table + 2] == b"\xaa\x50"):
            chip_id = int.from_bytes(data[12:14], "little")
            if chip_id != CHIP_IDS[chip]:
                raise ImageError(f"the full image's bootloader is not for {chip} "
                                 f"(chip id {chip_id})") from None
            return "full", BOOTLOADER_OFFSET[chip]
        raise app_error from None
    if app.size > APP_SLOT_SIZE:
        raise ImageError(f"app image of {app.size} bytes does not fit an OTA slot "
                         f"({APP_SLOT_SIZE} bytes)")
    return "app", APP_OFFSET


def _tool(name: str) -> list[str]:
    """The installed console script next to this Python, else `python -m name`."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", name]


def find_project(start: Path | None = None) -> Path | None:
    """The folder holding boot.py, main.py and lib/: the current folder or the package's repo."""
    here = Path(__file__).resolve().parents[2]
    for cand in ([start] if start else []) + [Path.cwd(), here]:
        if cand and (cand / "boot.py").is_file() and (cand / "lib").is_dir():
            return cand
    return None


def plan(port: str, firmware: Path, device: Path, project: Path, chip: str = "esp32",
         baud: int = DEFAULT_BAUD, umqtt: Path | None = None) -> FlashPlan:
    """Check every input and assemble the commands (raises ValueError / ImageError)."""
    try:
        data = firmware.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read firmware {firmware}: {e.strerror}") from None
    kind, offset = firmware_kind(data, chip)
    check_device_folder(device)
    for name in ("boot.py", "main.py"):
        if not (project / name).is_file():
            raise ValueError(f"{project / name} not found (use --project DIR)")
    if not (project / "lib").is_dir():
        raise ValueError(f"{project / 'lib'} not found (use --project DIR)")
    umqtt = umqtt or project / ".deps" / "umqtt"
    if not (umqtt / "simple.py").is_file():
        raise ValueError(f"{umqtt / 'simple.py'} not found (run `make setup`, or use --umqtt)")
    esptool = _tool("esptool") + ["--chip", chip, "--port", port, "--baud", str(baud)]
    p = FlashPlan(kind, offset)
    if kind == "app":
        p.commands.append(esptool + ["erase-region", hex(OTADATA[0]), hex(OTADATA[1])])
    p.commands.append(esptool + ["write-flash", hex(offset), str(firmware)])
    p.commands.append(_tool("mpremote") + [
        "connect", port,
        "cp", str(project / "boot.py"), str(project / "main.py"), ":", "+",
        "cp", "-r", str(project / "lib"), ":", "+",
        "cp", "-r", str(umqtt), ":lib", "+",
        "cp", "-r", str(device / "certs"), ":", "+",
        "cp", str(device / "config.json"), ":", "+",
        "reset"])
    return p


def run(p: FlashPlan) -> int:
    """Run the commands in order; return 0, or the exit code of the first that fails."""
    for cmd in p.commands:
        print("$ " + shlex.join(cmd), flush=True)
        rc = subprocess.call(cmd)
        if rc != 0:
            return rc
    return 0
