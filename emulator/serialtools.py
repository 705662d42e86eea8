"""What esptool and mpremote do to a board over its serial port, done to a flash file.

A command line meant for a board (what `fota flash --dry-run` prints, or one typed by hand)
runs against the emulated board: `run(flash, argv)` with argv as it would be run, its
program first (`esptool ...`, `python -m esptool ...`, `mpremote ...`).

esptool (v5; cmds.py), as its flasher stub does it:
- `write-flash [-e|--erase-all] ADDR FILE [ADDR FILE ...]` erases the 4 KB sectors each file
  covers (the data padded to 4 bytes; an unaligned address erases from its sector's start)
  and writes the file; `--erase-all` erases the whole chip first. The image's flash settings
  are kept (`--flash-size keep`, the default; other values are not modelled).
- `erase-region ADDR SIZE` (both multiples of 4096, or esptool refuses), `erase-flash`.
- `read-flash ADDR SIZE FILE`.
Global options (`--chip`, `--port`, `--baud`, `--before`, `--after`, ...) are taken and
ignored: the runner boots the board when asked, not at each `--after hard-reset`; but given
the board's chip (run(..., chip=)), a `--chip` for another one fails as esptool's connect does
("This chip is ESP32-C3, not ESP32-S3. Wrong --chip argument?", esptool loader.py).

mpremote: `connect PORT` (ignored), `cp [-r] SRC... DEST` from the host onto the board
(`:` paths; tools/mpremote/mpremote/commands.py: a folder is copied into DEST when DEST
exists, else as DEST), `reset`/`soft-reset` (ignored), commands chained with `+`. The board
must have a filesystem mounted at /, as the real mpremote needs: one that its first boot made
(an erased partition is not formatted here: boot the board first), not one it could not
mount.

These are host writes (FlashFS and plain file writes): no counted flash operations, no power
cuts, as with `python -m emulator fs`.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from emulator import chips
from emulator.flashfs import FlashFS, FlashFSError

SECTOR = 0x1000
ESPTOOL_VALUED = {"--chip", "-c", "--port", "-p", "--baud", "-b", "--before", "--after", "-a",
                  "--connect-attempts", "--port-filter", "--override-vddsdio"}
ESPTOOL_FLAGS = {"--no-stub", "--trace", "-t", "--verbose", "-v", "--silent", "-s"}
WRITE_VALUED = {"--flash-mode", "-fm", "--flash-freq", "-ff", "--flash-size", "-fs",
                "--spi-connection", "-sc"}
WRITE_FLAGS = {"--no-progress", "-p", "--compress", "-z", "--no-compress", "-u",
               "--force", "--ignore-flash-enc-efuse-setting", "--no-diff-verify"}


class ToolError(Exception):
    """The command fails as the tool would (or does something this model does not have)."""


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ToolError(f"bad number {text!r}") from None


def which(cmd: list[str]) -> tuple[str, list[str]]:
    """(tool, its arguments) of a command line: tool is "esptool", "mpremote" or the
    program's name for anything else."""
    if len(cmd) >= 3 and cmd[1] == "-m":
        return cmd[2].replace("_", "-").split(".")[0], cmd[3:]
    name = Path(cmd[0]).name
    if name.endswith(".py"):
        name = name[:-3]
    return name, cmd[1:]


def run(flash: str | os.PathLike, cmd: list[str], chip: str | None = None) -> None:
    """Run an esptool or mpremote command line against a flash file (of a board with this
    chip, if given: esptool's --chip must name it)."""
    tool, args = which(cmd)
    if tool == "esptool":
        esptool(flash, args, chip)
    elif tool == "mpremote":
        mpremote(flash, args)
    else:
        raise ToolError(f"{cmd[0]}: not esptool or mpremote")


# ---------------------------------------------------------------------------- esptool
def esptool(flash: str | os.PathLike, args: list[str], chip: str | None = None) -> None:
    args = list(args)
    while args and args[0].startswith("-"):
        opt = args.pop(0).split("=", 1)[0]
        if opt in ESPTOOL_VALUED:
            if "=" not in opt and args:
                value = args.pop(0)
                if opt in ("--chip", "-c") and chip is not None and value not in ("auto", chip):
                    known = chips.CHIPS.get(value)
                    raise ToolError(f"This chip is {chips.get(chip).name}, not "
                                    f"{known.name if known else value}. Wrong --chip argument?")
        elif opt not in ESPTOOL_FLAGS:
            raise ToolError(f"esptool option {opt}: not modelled")
    if not args:
        raise ToolError("esptool: no command")
    command = args.pop(0).replace("_", "-")
    data = bytearray(Path(flash).read_bytes())
    if command == "write-flash":
        _write_flash(data, args)
    elif command == "erase-region":
        if len(args) != 2:
            raise ToolError("erase-region ADDRESS SIZE")
        addr, size = _int(args[0]), _int(args[1])
        if addr % SECTOR:
            raise ToolError(f"Offset to erase from must be a multiple of {SECTOR}.")
        if size % SECTOR:
            raise ToolError(f"Size of data to erase must be a multiple of {SECTOR}.")
        _erase(data, addr, size)
    elif command == "erase-flash":
        if args:
            raise ToolError(f"erase-flash {' '.join(args)}: not modelled")
        data[:] = b"\xff" * len(data)
    elif command == "read-flash":
        if len(args) != 3:
            raise ToolError("read-flash ADDRESS SIZE FILENAME")
        addr, size = _int(args[0]), _int(args[1])
        if addr + size > len(data):
            raise ToolError(f"read-flash beyond the end of the {len(data)}-byte flash")
        Path(args[2]).write_bytes(bytes(data[addr:addr + size]))
        return
    else:
        raise ToolError(f"esptool {command}: not modelled")
    Path(flash).write_bytes(bytes(data))


def _erase(data: bytearray, addr: int, size: int) -> None:
    if addr + size > len(data):
        raise ToolError(f"erase {addr:#x}+{size:#x} beyond the end of the {len(data)}-byte flash")
    data[addr:addr + size] = b"\xff" * size


def _write_flash(data: bytearray, args: list[str]) -> None:
    pairs: list[str] = []
    erase_all = False
    while args:
        a = args.pop(0)
        if a in ("-e", "--erase-all"):
            erase_all = True
        elif a.split("=", 1)[0] in WRITE_VALUED:
            value = a.split("=", 1)[1] if "=" in a else (args.pop(0) if args else "")
            if value not in ("keep", "detect") or a.split("=", 1)[0] in ("--spi-connection", "-sc"):
                raise ToolError(f"write-flash {a} {value}: not modelled (the image's own "
                                "settings are kept)")
        elif a in WRITE_FLAGS:
            pass
        elif a.startswith("-"):
            raise ToolError(f"write-flash option {a}: not modelled")
        else:
            pairs.append(a)
    if not pairs or len(pairs) % 2:
        raise ToolError("write-flash ADDRESS FILENAME [ADDRESS FILENAME ...]")
    files = []
    for addr_text, name in zip(pairs[::2], pairs[1::2]):
        addr = _int(addr_text)
        try:
            image = Path(name).read_bytes()
        except OSError as e:
            raise ToolError(f"{name}: {e.strerror}") from None
        image += b"\xff" * (-len(image) % 4)  # esptool pads to 4 bytes
        if addr + len(image) > len(data):
            raise ToolError(f"File {name} (length {len(image)}) at offset {addr} will not fit in "
                            f"{len(data)} bytes of flash.")
        files.append((addr, image))
    if erase_all:
        data[:] = b"\xff" * len(data)
    for addr, image in files:
        start = addr // SECTOR * SECTOR
        end = -(-(addr + len(image)) // SECTOR) * SECTOR
        _erase(data, start, min(end, len(data)) - start)
        data[addr:addr + len(image)] = image


# ---------------------------------------------------------------------------- mpremote
def mpremote(flash: str | os.PathLike, args: list[str]) -> None:
    steps: list[list[str]] = [[]]
    for a in args:
        if a == "+":
            steps.append([])
        else:
            steps[-1].append(a)
    fs: FlashFS | None = None
    for step in steps:
        while step:
            command = step.pop(0)
            if command == "connect":
                if step:
                    step.pop(0)
            elif command in ("reset", "soft-reset"):
                pass
            elif command in ("cp", "fs"):
                if command == "fs":
                    if not step or step.pop(0) != "cp":
                        raise ToolError("mpremote fs: only cp is modelled")
                if fs is None:
                    fs = _board_fs(flash)
                _cp(fs, step)
                step = []
            else:
                raise ToolError(f"mpremote {command}: not modelled")
    if fs is not None:
        fs.save()


def _board_fs(flash: str | os.PathLike) -> FlashFS:
    fs = FlashFS(flash)
    if not fs.mounted:
        state = ("erased: the board has not booted since it was flashed" if fs.blank else
                 "not a filesystem the board mounts (it reports it corrupted)")
        raise FlashFSError(f"mpremote cp: no filesystem at / on the board: its vfs partition "
                           f"at {fs.part.offset:#x} is {state}")
    return fs


def _cp(fs: FlashFS, args: list[str]) -> None:
    recursive = False
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-r", "--recursive"):
            recursive = True
        elif opt not in ("-f", "--force"):
            raise ToolError(f"mpremote cp {opt}: not modelled")
    if len(args) < 2 or not args[-1].startswith(":"):
        raise ToolError("mpremote cp SRC... :DEST (host to board only)")
    dest = args[-1][1:].strip("/")
    for src in args[:-1]:
        path = Path(src)
        if path.is_dir():
            if not recursive:
                raise ToolError("cp: -r not specified; omitting directory")
            into = (posixpath.join(dest, path.name) if not dest or fs.is_dir(dest) else dest)
            fs.put_tree(path, into)
        elif path.is_file():
            target = posixpath.join(dest, path.name) if not dest or fs.is_dir(dest) else dest
            fs.write_file(target, path.read_bytes())
        else:
            raise ToolError(f"cp: {src}: no such file or folder")
