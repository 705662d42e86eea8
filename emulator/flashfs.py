"""The filesystem in the `vfs` partition, read and written from the host (CPython).

A stock ESP32 MicroPython formats the `vfs` partition as littlefs v2 on its first boot
(ports/esp32/modules/inisetup.py: `vfs.VfsLfs2.mkfs(bdev)`), with the defaults of
extmod/vfs_lfs.c and extmod/vfs_lfsx.c: read and program size 32 bytes, lookahead 32 bytes,
block_cycles 100, cache size min(block size, 4 * max(read, prog)) = 128, the block size and
count from the block device's ioctl 5 and 4 (esp32.Partition: 4096-byte blocks, the
partition's size / 4096), and littlefs's own name_max (255) and disk version (2.1). Files
carry their modification time in attribute 1 (8 bytes, little endian, nanoseconds since
1970), which `os.stat` reads back.

The same parameters here (PyPI littlefs-python, which bundles the same littlefs release as
MicroPython 1.29) give a filesystem that the board mounts, and read what the board wrote.
Host writes are not flash operations of the emulated board (no counters, no power cuts):
they stand for what mpremote or a flash dump tool does outside a run.
"""

from __future__ import annotations

import os
import posixpath
import time
from pathlib import Path

from littlefs import LittleFS, LittleFSError, UserContext

from emulator import flashfmt as ff

BLOCK_SIZE = 4096
READ_SIZE = 32
PROG_SIZE = 32
LOOKAHEAD = 32
BLOCK_CYCLES = 100
CACHE_SIZE = min(BLOCK_SIZE, 4 * max(READ_SIZE, PROG_SIZE))
NAME_MAX = 255
ATTR_MTIME = 1
_ERRORS = (LittleFSError, OSError)  # littlefs-python raises FileNotFoundError for some

# inisetup.py writes this boot.py into a fresh filesystem
DEFAULT_BOOT_PY = """\
# This file is executed on every boot (including wake-boot from deepsleep)
#import esp
#esp.osdebug(None)
#import webrepl
#webrepl.start()
"""


class FlashFSError(Exception):
    """The vfs partition cannot be used as asked (no filesystem, no space, no such file)."""


def vfs_partition(data: bytes) -> ff.PartitionEntry:
    """The partition that flashbdev.py mounts: data partition "vfs" (or "ffat")."""
    table = ff.parse_partition_table(data[ff.PARTITION_TABLE_OFFSET:
                                          ff.PARTITION_TABLE_OFFSET + ff.PARTITION_TABLE_MAX_LEN])
    for p in ff.with_runtime_vfs(table, len(data)):
        if p.type == ff.TYPE_DATA and p.label == "vfs":
            return p
    raise FlashFSError("the flash has no vfs partition")


def _mtime_attr(ns: int | None = None) -> bytes:
    return (time.time_ns() if ns is None else ns).to_bytes(8, "little")


class FlashFS:
    """The littlefs filesystem of a flash file's vfs partition, in memory.

    FlashFS(path) reads the partition; write methods change the copy in memory and save()
    writes the changed blocks back into the flash file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        data = self.path.read_bytes()
        self.part = vfs_partition(data)
        region = data[self.part.offset:self.part.offset + self.part.size]
        self._orig = bytes(region)
        self._ctx = UserContext(buffer=bytearray(region))
        self.fs = LittleFS(self._ctx, mount=False, block_size=BLOCK_SIZE,
                           block_count=self.part.size // BLOCK_SIZE, read_size=READ_SIZE,
                           prog_size=PROG_SIZE, lookahead_size=LOOKAHEAD,
                           block_cycles=BLOCK_CYCLES, cache_size=CACHE_SIZE, name_max=NAME_MAX)
        self.mounted = False
        try:
            self.fs.mount()
            self.mounted = True
        except _ERRORS:
            pass

    @property
    def blank(self) -> bool:
        """True if the partition is erased (inisetup.check_bootsec: the first block all 0xFF)."""
        return self._ctx.buffer[:BLOCK_SIZE] == b"\xff" * BLOCK_SIZE

    def _need(self) -> None:
        if not self.mounted:
            state = "erased" if self.blank else "not a littlefs filesystem"
            raise FlashFSError(f"{self.path}: the vfs partition at 0x{self.part.offset:x} is "
                               f"{state}: no filesystem to read")

    def format(self) -> None:
        """What inisetup.setup() does on a board's first boot: mkfs, then the default boot.py."""
        self.fs.format()
        self.fs.mount()
        self.mounted = True
        self.write_file("boot.py", DEFAULT_BOOT_PY.encode())

    # ---- reading
    def files(self) -> list[str]:
        """Every file, as paths relative to / ("lib/fota.py"), sorted."""
        self._need()
        out = []
        for root, _dirs, names in self.fs.walk("/"):
            for name in names:
                out.append(posixpath.join(root, name).lstrip("/"))
        return sorted(out)

    def listdir(self, path: str = "/") -> list[tuple[str, bool, int]]:
        """(name, is_dir, size) of each entry of a folder."""
        self._need()
        try:
            entries = list(self.fs.scandir(path))
        except _ERRORS:
            raise FlashFSError(f"{path}: no such folder on the flash") from None
        return sorted((e.name, e.type == 2, e.size) for e in entries)

    def is_dir(self, path: str) -> bool:
        self._need()
        try:
            return self.fs.stat(path).type == 2
        except _ERRORS:
            return False

    def exists(self, path: str) -> bool:
        self._need()
        try:
            self.fs.stat(path)
            return True
        except _ERRORS:
            return False

    def read_file(self, path: str) -> bytes:
        self._need()
        try:
            with self.fs.open(path, "rb") as f:
                return f.read()
        except _ERRORS:
            raise FlashFSError(f"{path}: no such file on the flash") from None

    def mtime_ns(self, path: str) -> int | None:
        self._need()
        try:
            raw = self.fs.getattr(path, ATTR_MTIME)
        except _ERRORS:
            return None
        return int.from_bytes(raw, "little") if len(raw) == 8 else None

    # ---- writing (in memory until save())
    def _makedirs(self, folder: str) -> None:
        parts = [p for p in folder.split("/") if p]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if not self.exists(sub):
                self.fs.mkdir(sub)
            elif not self.is_dir(sub):
                raise FlashFSError(f"{sub} is a file on the flash, not a folder")

    def write_file(self, path: str, data: bytes, mtime_ns: int | None = None) -> bool:
        """Write a file (its folders made as needed); False if it already held `data`."""
        self._need()
        path = path.strip("/")
        if not path:
            raise FlashFSError("no file name")
        if self.exists(path) and not self.is_dir(path) and self.read_file(path) == data:
            return False
        self._makedirs(posixpath.dirname(path))
        try:
            with self.fs.open(path, "wb") as f:
                f.write(data)
            self.fs.setattr(path, ATTR_MTIME, _mtime_attr(mtime_ns))
        except _ERRORS as e:
            if getattr(e, "code", None) == LittleFSError.Error.LFS_ERR_NOSPC:
                raise FlashFSError(f"{path}: the vfs partition is full "
                                   f"({self.part.size // 1024} KB)") from None
            raise FlashFSError(f"{path}: {e}") from None
        return True

    def remove(self, path: str) -> None:
        self._need()
        try:
            self.fs.remove(path)
        except _ERRORS as e:
            raise FlashFSError(f"{path}: cannot remove ({e})") from None

    def put_tree(self, folder: str | os.PathLike, dest: str = "") -> list[str]:
        """Copy a host folder's files in, as `mpremote cp -r FOLDER/. :DEST` does: files of
        the same name are overwritten (unchanged ones skipped, as mpremote does), others on
        the flash are kept. Returns the paths written."""
        folder = Path(folder)
        written = []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            target = posixpath.join(dest.strip("/"), path.relative_to(folder).as_posix())
            if self.write_file(target, path.read_bytes()):
                written.append(target)
        return written

    def save(self) -> int:
        """Write the blocks that changed back into the flash file; the number written."""
        new = bytes(self._ctx.buffer)
        changed = 0
        with open(self.path, "r+b") as f:
            for off in range(0, len(new), BLOCK_SIZE):
                block = new[off:off + BLOCK_SIZE]
                if block != self._orig[off:off + BLOCK_SIZE]:
                    f.seek(self.part.offset + off)
                    f.write(block)
                    changed += 1
        self._orig = new
        return changed


def install(flash: str | os.PathLike, folder: str | os.PathLike) -> list[str]:
    """Copy a device folder onto a flash file's filesystem as `mpremote cp -r` would onto a
    board that has booted once: a blank partition is first formatted as inisetup does (with
    its default boot.py). Returns the paths written."""
    fs = FlashFS(flash)
    if not fs.mounted:
        if not fs.blank:
            fs._need()
        fs.format()
    written = fs.put_tree(folder)
    fs.save()
    return written
