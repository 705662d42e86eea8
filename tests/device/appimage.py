"""Application releases for the tests: ROMFS images built with mpremote's writer from a dict
of files, .py compiled to .mpy by mpy-cross (as `mpremote romfs build` does)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from mpremote.romfs import VfsRomWriter, make_romfs


def build(files: dict[str, str | bytes], compile_py: bool = True) -> bytes:
    """A ROMFS image of `files` (relative paths; folders made as needed)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            p = Path(tmp) / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data.encode() if isinstance(data, str) else data)
        with contextlib.redirect_stdout(io.StringIO()):
            return make_romfs(tmp, mpy_cross=compile_py)


def raw(entries: list[tuple[str, bytes]]) -> bytes:
    """A ROMFS image of top-level files as given, no compiling (for hand-made .mpy headers)."""
    w = VfsRomWriter()
    for name, data in entries:
        w.mkfile(name, data)
    return w.finalise()


def app(version: str, body: str = "def step(conn):\n    pass\n", **more: str) -> bytes:
    """A release: app.py (compiled), VERSION, and `more` files."""
    files: dict[str, str | bytes] = {"app.py": f"VERSION = {version!r}\n" + body, "VERSION": version}
    files.update(more)
    return build(files)
