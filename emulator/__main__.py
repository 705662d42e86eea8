"""python -m emulator {run,mkimage,mkflash,mkused,esptool,mpremote,info,fs}: the ESP32
emulator's command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emulator import chips
from emulator import flashfmt as ff
from emulator.device import EXIT_CODES, Device, parse_size
from emulator.flash import Flash, create_flash
from emulator.flashfs import FlashFS, FlashFSError
from emulator.image import build_app_image, read_app_desc


def _payload_from_dir(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        raise SystemExit(f"error: payload folder {folder} not found")
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            out[path.relative_to(folder).as_posix()] = path.read_text()
    return out


def cmd_mkimage(args) -> int:
    payload: dict[str, str] = {}
    if args.payload_dir:
        payload.update(_payload_from_dir(Path(args.payload_dir)))
    for item in args.payload or []:
        path = Path(item)
        if not path.is_file():
            raise SystemExit(f"error: payload file {path} not found")
        payload[path.name] = path.read_text()
    image = build_app_image(args.version, project=args.project, payload=payload,
                            size=parse_size(args.size) if args.size else None,
                            secure_version=args.secure_version, chip_id=args.chip_id,
                            chip=args.chip)
    Path(args.output).write_bytes(image)
    print(f"{args.output}: {len(image)} bytes, version {args.version}, "
          f"{len(payload)} frozen file(s)")
    return 0


def cmd_mkflash(args) -> int:
    app = Path(args.app).read_bytes()
    ota_1 = Path(args.ota_1).read_bytes() if args.ota_1 else None
    for label, image in (("app", app), ("ota_1", ota_1)):
        if image is not None:
            try:
                read_app_desc(image)
            except ValueError as e:
                raise SystemExit(f"error: {label}: {e}")
    subtype = {"runtime": None, "fat": ff.SUBTYPE_DATA_FAT,
               "littlefs": ff.SUBTYPE_DATA_LITTLEFS}[args.vfs]
    slots = {}
    for index, path in enumerate((args.romfs_0, args.romfs_1)):
        if path:
            slots[index] = Path(path).read_bytes()
    if slots and args.layout != "fota":
        raise SystemExit("error: --romfs-0/--romfs-1 need --layout fota (a romfs partition)")
    try:
        create_flash(args.flash, app, parse_size(args.size), ota_1=ota_1, vfs_subtype=subtype,
                     romfs=args.layout == "fota", romfs_slots=slots, chip=args.chip)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(f"{args.flash}: {parse_size(args.size)} bytes, ota_0 = {args.app}, "
          f"layout {args.layout}")
    return 0


def cmd_info(args) -> int:
    summary = Flash(args.flash).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['path']}: {summary['size']} bytes")
    print("partitions:")
    for p in summary["partitions"]:
        print(f"  {p['label']:<10} type {p['type']} subtype 0x{p['subtype']:02x} "
              f"offset 0x{p['offset']:06x} size 0x{p['size']:06x}"
              + ("" if p["in_table"] else "  (added by MicroPython at boot)"))
    print("otadata:")
    for i, e in enumerate(summary["otadata"]):
        if e["seq"] == ff.SEQ_UNSET:
            print(f"  [{i}] erased")
        else:
            print(f"  [{i}] seq {e['seq']} {e['state']} crc {'ok' if e['crc_ok'] else 'BAD'}")
    print("slots:")
    for label, s in summary["slots"].items():
        desc = s["app_desc"] or {}
        state = "valid" if s["valid"] else f"invalid ({s['error']})"
        print(f"  {label:<6} {desc.get('project_name', '-')} {desc.get('version', '-')}: {state}")
    print(f"boots: {summary['boot_slot'] or 'nothing (' + summary.get('boot_error', '') + ')'}")
    for r in summary["romfs"]:
        held = f"a ROMFS image of {r['image']} bytes" if r["image"] else "no ROMFS image"
        print(f"romfs slot {r['slot']}: 0x{r['offset']:06x} size 0x{r['size']:05x}, {held}")
    fs = summary["filesystem"]
    if fs["state"] == "littlefs":
        print(f"filesystem: littlefs, {fs['files']} file(s), {fs['used_blocks']} of "
              f"{fs['blocks']} blocks used")
    elif fs["state"] == "erased":
        print("filesystem: none yet (vfs erased: the first boot formats it)")
    elif fs["state"] == "unknown":
        print("filesystem: not littlefs (the board would report it corrupted)")
    else:
        print(f"filesystem: {fs['error']}")
    return 0


def cmd_fs(args) -> int:
    fs = FlashFS(args.flash)
    if args.fs_command == "ls":
        if not args.path:
            for name in fs.files():
                print(name)
            return 0
        if not fs.is_dir(args.path):
            if not fs.exists(args.path):
                raise FlashFSError(f"{args.path}: no such file or folder on the flash")
            print(args.path)
            return 0
        for name, is_dir, size in fs.listdir(args.path):
            print(f"{'d' if is_dir else '-'} {size:>8} {name}{'/' if is_dir else ''}")
        return 0
    if args.fs_command == "cat":
        sys.stdout.buffer.write(fs.read_file(args.path))
        sys.stdout.flush()
        return 0
    if args.fs_command == "get":
        dest = Path(args.dest or Path(args.path).name)
        if dest.is_dir():
            dest = dest / Path(args.path).name
        dest.write_bytes(fs.read_file(args.path))
        print(f"{args.path} -> {dest}")
        return 0
    # put: as mpremote cp, onto a filesystem that exists (a blank one is formatted first,
    # as the board's first boot would)
    if not fs.mounted:
        if not fs.blank:
            fs.files()  # raises: not a littlefs filesystem
        fs.format()
    src = Path(args.src)
    if src.is_dir():
        written = fs.put_tree(src, args.dest or "")
    elif src.is_file():
        dest = (args.dest or src.name).strip("/")
        if not dest or fs.is_dir(dest):
            dest = f"{dest}/{src.name}".strip("/")
        written = [dest] if fs.write_file(dest, src.read_bytes()) else []
    else:
        raise FlashFSError(f"{src}: no such file or folder")
    fs.save()
    for name in written:
        print(f"wrote {name}")
    return 0


def cmd_mkused(args) -> int:
    from emulator.usedboard import create_used_flash

    files = None
    if args.files:
        folder = Path(args.files)
        if not folder.is_dir():
            raise SystemExit(f"error: folder {folder} not found")
        files = {p.relative_to(folder).as_posix(): p.read_bytes()
                 for p in sorted(folder.rglob("*")) if p.is_file()}
    info = create_used_flash(args.flash, args.variant, files=files,
                             reach=() if args.no_log else (0x310000, 0x350000))
    offset, size = info["vfs"]
    print(f"{args.flash}: a board that ran stock MicroPython ({args.variant}): filesystem at "
          f"0x{offset:x} ({size // 1024} KB), {len(info['files'])} file(s), data log "
          f"{info['log_bytes']} bytes")
    return 0


def cmd_tool(args) -> int:
    from emulator import serialtools

    if not args.args:
        raise SystemExit(f"error: give the {args.command} arguments after the flash file")
    try:
        serialtools.run(args.flash, [args.command] + args.args)
    except serialtools.ToolError as e:
        raise SystemExit(f"{args.command}: {e}")
    return 0


def cmd_run(args) -> int:
    for name in ("max_boots", "cut_at"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise ValueError("--timeout must be positive")
    device = Device(args.flash, args.fs, heapsize=args.heapsize, state_dir=args.state,
                    wdt_grace=args.wdt_grace, strict=args.strict, chip=args.chip)
    try:
        result = device.run(max_boots=args.max_boots, timeout=args.timeout, cut_at=args.cut_at)
    except KeyboardInterrupt:
        device.stop()
        return 130
    finally:
        device.close()
    if args.json:
        print(json.dumps({"exit_reason": result.exit_reason, "exit_code": result.exit_code,
                          "boots": [vars(b) for b in result.boots],
                          "flash": result.flash_stats}, indent=2))
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator",
                                     description="An emulated ESP32 running MicroPython firmware.")
    sub = parser.add_subparsers(dest="command", required=True)

    codes = ", ".join(f"{v} {k}" for k, v in EXIT_CODES.items())
    p = sub.add_parser("run", help="boot the device until main.py ends",
                       description=f"Boot loop of the emulated board. Exit status: {codes}.")
    p.add_argument("--flash", required=True, help="flash file (see mkflash)")
    p.add_argument("--fs", help="device folder (boot.py, main.py, lib/...) copied onto the flash "
                                "filesystem first, as mpremote cp -r would; without it the board "
                                "runs what its flash holds")
    p.add_argument("--heapsize", default="100k", help="MicroPython heap (default 100k)")
    p.add_argument("--chip", default="esp32", choices=sorted(chips.CHIPS),
                   help="the board's chip (default esp32)")
    p.add_argument("--max-boots", type=int, help="stop after this many boots")
    p.add_argument("--cut-at", type=int, help="cut the power during this flash operation")
    p.add_argument("--wdt-grace", type=float, default=2.0,
                   help="seconds added to WDT timeouts for host slowness (default 2)")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    p.add_argument("--strict", action="store_true", help="raise on writes to unerased flash")
    p.add_argument("--state", help="keep the runner's state (counters, WDT...) in this folder")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("mkimage", help="build an ESP32 app image")
    p.add_argument("--version", required=True, help="app version (esp_app_desc_t.version)")
    p.add_argument("--project", default="micropython", help="project name")
    p.add_argument("--payload-dir", help="folder of frozen modules (_boot.py, ...)")
    p.add_argument("--payload", action="append", help="a frozen module file (repeatable)")
    p.add_argument("--size", help="pad the image to about this size (e.g. 1500k)")
    p.add_argument("--secure-version", type=int, default=0)
    p.add_argument("--chip-id", type=int, default=0, help="image chip id (0 = ESP32)")
    p.add_argument("--chip", choices=sorted(chips.CHIPS),
                   help="build for this chip: its chip id, revisions and memory map")
    p.add_argument("-o", "--output", required=True, help="output .bin")
    p.set_defaults(func=cmd_mkimage)

    p = sub.add_parser("mkflash", help="create a 4 MB flash file with an app in ota_0")
    p.add_argument("flash", help="flash file to write")
    p.add_argument("--app", required=True, help="app image for ota_0")
    p.add_argument("--ota-1", help="app image for ota_1 (optional)")
    p.add_argument("--size", default="4m", help="flash size (default 4m)")
    p.add_argument("--chip", default="esp32", choices=sorted(chips.CHIPS),
                   help="lay the flash out for this chip: bootloader offset, partition table (default esp32)")
    p.add_argument("--vfs", choices=("runtime", "fat", "littlefs"), default="runtime",
                   help="runtime (default): no vfs row, MicroPython 1.26+ adds it at boot; "
                        "fat/littlefs: a vfs row of that subtype in the table")
    p.add_argument("--layout", choices=("generic", "fota"), default="generic",
                   help="generic (default): MicroPython's 4MiB-ota table, a firmware without "
                        "ROMFS; fota: this project's FOTA_ESP32 table and firmware, with a "
                        "256 KB romfs partition (two application slots)")
    p.add_argument("--romfs-0", metavar="IMAGE", help="a ROMFS image for slot 0 (--layout fota)")
    p.add_argument("--romfs-1", metavar="IMAGE", help="a ROMFS image for slot 1 (--layout fota)")
    p.set_defaults(func=cmd_mkflash)

    p = sub.add_parser("mkused", help="create the flash of a board that ran stock MicroPython",
                       description="The flash of a used 4 MB board: stock MicroPython's table "
                                   "and apps, its littlefs filesystem with files at its own "
                                   "offset and a data log reaching 0x310000 and 0x350000 (where "
                                   "this project's table puts romfs and its filesystem).")
    p.add_argument("flash", help="flash file to write")
    p.add_argument("--variant", choices=("generic", "ota"), default="generic",
                   help="generic (default): ESP32_GENERIC, one factory app, filesystem at "
                        "0x200000; ota: ESP32_GENERIC-OTA, two slots (ota_1 runs), filesystem "
                        "at 0x310000")
    p.add_argument("--files", metavar="DIR", help="the user's files (default: a few of its own)")
    p.add_argument("--no-log", action="store_true", help="no data log filling the filesystem")
    p.set_defaults(func=cmd_mkused)

    for tool in ("esptool", "mpremote"):
        p = sub.add_parser(tool, help=f"run {tool} arguments against a flash file",
                           description=f"`python -m emulator {tool} FLASH ARGS...` does to the "
                                       f"flash file what `{tool} ARGS...` does to a board "
                                       "(emulator/serialtools.py says what is modelled).")
        p.add_argument("flash")
        p.add_argument("args", nargs=argparse.REMAINDER)
        p.set_defaults(func=cmd_tool)

    p = sub.add_parser("info", help="partitions, otadata and slot versions of a flash file")
    p.add_argument("flash")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("fs", help="files on the flash filesystem (the vfs partition's littlefs)",
                       description="Read and write the littlefs filesystem in a flash file's vfs "
                                   "partition, as the board mounts it. Host writes are not board "
                                   "flash operations (no counters, no power cuts).")
    fs_sub = p.add_subparsers(dest="fs_command", required=True)
    q = fs_sub.add_parser("ls", help="list every file, or one folder")
    q.add_argument("flash")
    q.add_argument("path", nargs="?", help="a folder to list (default: every file)")
    q = fs_sub.add_parser("cat", help="print a file")
    q.add_argument("flash")
    q.add_argument("path")
    q = fs_sub.add_parser("get", help="copy a file from the flash to the host")
    q.add_argument("flash")
    q.add_argument("path")
    q.add_argument("dest", nargs="?", help="host file or folder (default: its name, here)")
    q = fs_sub.add_parser("put", help="copy a host file or folder onto the flash (as mpremote cp)")
    q.add_argument("flash")
    q.add_argument("src")
    q.add_argument("dest", nargs="?", help="path on the flash (default: the same name at /)")
    p.set_defaults(func=cmd_fs)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, KeyError, FlashFSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 64


if __name__ == "__main__":
    sys.exit(main())
