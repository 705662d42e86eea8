"""Delta updates on the device (lib/delta.py, lib/heatshrink.py, lib/appimage.py) in the real
MicroPython interpreter, reading the base from the emulated flash's running slot: patches made
by detools' own command line are applied byte for byte (every compression the device has, both
heatshrink index widths, two diff algorithms, the viper kernels and the plain-bytecode ones),
hand-built patches written from detools' documented format too, and every bad patch is a
DeltaError with its reason."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import detools
import pytest

from emulator.flash import create_flash
from emulator.image import build_app_image
from tests.deltaimages import evolve
from tests.device.mpy import ROOT, run_json

OLD = build_app_image("1.0.0", size=300_000)
NEW = evolve(OLD, "1.0.1")
BIG_OLD = build_app_image("1.0.0", size=1_500_000)
BIG_NEW = evolve(BIG_OLD, "1.0.1", seed=2, edits=12)

APPLY = """
import json, binascii, hashlib, esp32, appimage, delta, deltaplain
class File:  # a patch file as the transport stream
    def __init__(self, path):
        self.f = open(path, "rb")
    def readinto(self, b):
        return self.f.readinto(b)
    def close(self):
        self.f.close()
base = esp32.Partition(esp32.Partition.RUNNING)
blen = appimage.length(base)[0]
out = {"base": [blen, appimage.sha256(base)], "fast": delta.fast is not None}
for name, plain in %s:
    delta.kern = deltaplain if plain else delta.fast
    h = hashlib.sha256()
    buf = memoryview(bytearray(4096))
    sizes = (4096, 1, 333, 4096, 4095)  # readinto with every kind of room left
    try:
        p = delta.Patch(File(name), base, blen)
        n = i = 0
        while True:
            k = p.readinto(buf[:sizes[i %% 5]])
            i += 1
            if not k:
                break
            h.update(buf[:k])
            n += k
        out[name + ("/plain" if plain else "")] = [n, binascii.hexlify(h.digest()).decode()]
    except delta.DeltaError as e:
        out[name + ("/plain" if plain else "")] = "DeltaError: " + str(e)
print(json.dumps(out))
"""


def on_board(tmp: Path, image: bytes, patches: dict[str, bytes], plain: bool = False) -> dict:
    """Apply each patch on a board running `image`; -> {name: [bytes made, SHA-256] or error}."""
    tmp.mkdir(parents=True, exist_ok=True)
    create_flash(tmp / "flash.bin", image)
    (tmp / "state").mkdir(exist_ok=True)
    jobs = []
    for name, data in patches.items():
        (tmp / name).write_bytes(data)
        jobs += [(name, False)] + ([(name, True)] if plain else [])
    env = {"MICROPYPATH": ":".join(str(ROOT / d) for d in ("emulator/port", "emulator", "lib")),
           "ESP32_FLASH": str(tmp / "flash.bin"), "ESP32_STATE": str(tmp / "state"),
           "ESP32_RUNNING": "0x10000"}
    return run_json(APPLY % repr(jobs), env=env, cwd=tmp, timeout=300)


def cli_patch(tmp: Path, old: bytes, new: bytes, *args: str) -> bytes:
    """A patch made by detools' command line."""
    (tmp / "old.bin").write_bytes(old)
    (tmp / "new.bin").write_bytes(new)
    subprocess.run([sys.executable, "-m", "detools", "create_patch", *args, str(tmp / "old.bin"),
                    str(tmp / "new.bin"), str(tmp / "p.bin")], check=True, capture_output=True)
    return (tmp / "p.bin").read_bytes()


def detools_apply(old: bytes, patch: bytes) -> bytes:
    out = io.BytesIO()
    detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), out)
    return out.getvalue()


def made(data: bytes) -> list:
    return [len(data), hashlib.sha256(data).hexdigest()]


CLI = {  # name: create_patch options
    "none": ["-c", "none"],
    "crle": ["-c", "crle"],
    "heatshrink": ["-c", "heatshrink"],  # window 2**8, lookahead 2**7: detools' default
    "heatshrink-w12-l4": ["-c", "heatshrink", "--heatshrink-window-sz2", "12",
                          "--heatshrink-lookahead-sz2", "4"],  # an index wider than a byte
    "heatshrink-w4-l3": ["-c", "heatshrink", "--heatshrink-window-sz2", "4",
                         "--heatshrink-lookahead-sz2", "3"],  # the smallest
    "heatshrink-match-blocks": ["-c", "heatshrink", "-a", "match-blocks"],
    "crle-match-blocks": ["-c", "crle", "-a", "match-blocks"],
}


def test_patches_made_by_detools_cli_are_applied_byte_for_byte(tmp_path):
    patches = {f"{name}.patch": cli_patch(tmp_path, OLD, NEW, *args) for name, args in CLI.items()}
    for data in patches.values():
        assert detools_apply(OLD, data) == NEW  # what detools itself makes
    out = on_board(tmp_path / "board", OLD, patches, plain=True)
    assert out.pop("fast") is True  # the viper kernels are in use where the emitter is
    assert out.pop("base") == [len(OLD), OLD[-32:].hex()]
    want = made(NEW)
    assert out == {k: want for k in out}, out
    assert len(out) == 2 * len(CLI)  # viper and plain bytecode, every patch


def test_full_size_image(tmp_path):
    # 1.5 MB, a dozen changes and a shift: the heatshrink patch detools makes for a firmware
    patch = cli_patch(tmp_path, BIG_OLD, BIG_NEW, "-c", "heatshrink")
    assert len(patch) < len(BIG_NEW) // 10
    out = on_board(tmp_path / "board", BIG_OLD, {"big.patch": patch})
    assert out["big.patch"] == made(BIG_NEW)


# --- hand-built patches, from detools' documented format ------------------------------------

def size(v: int) -> bytes:
    """A detools size field: first byte bit 7 more, bit 6 sign, bits 5-0; then 7 bits a byte."""
    neg, v = v < 0, abs(v)
    out = [(0x40 if neg else 0) | (v & 0x3F)]
    v >>= 6
    while v:
        out[-1] |= 0x80
        out.append(v & 0x7F)
        v >>= 7
    return bytes(out)


def uleb(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


class Bits:
    """Heatshrink's bit stream: most significant bit first, the last byte padded with 0s."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, n: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def literal(self, b: int) -> None:
        self.put(1, 1)
        self.put(b, 8)

    def backref(self, offset: int, count: int, wb: int, lb: int) -> None:
        self.put(0, 1)
        self.put(offset - 1, wb)
        self.put(count - 1, lb)

    def bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def header(compression: int, to_size: int, patch_type: int = 0) -> bytes:
    return bytes([patch_type << 4 | compression]) + size(to_size)


# diff 5 bytes (+1..+5 on base[0:5]), extra "XYZ", adjustment +10 (base at 15);
# diff 4 zero bytes (base[15:19] as it is), no extra, adjustment -15 (base at 4);
# diff 3 bytes of 0xFF (base[4:7] minus 1), no extra, no adjustment
BODY = (size(0) + size(5) + bytes([1, 2, 3, 4, 5]) + size(3) + b"XYZ" + size(10)
        + size(4) + bytes(4) + size(0) + size(-15) + size(3) + b"\xff" * 3 + size(0) + size(0))
HAND = (bytes((OLD[i] + i + 1) & 0xFF for i in range(5)) + b"XYZ" + OLD[15:19]
        + bytes((b - 1) & 0xFF for b in OLD[4:7]))


def heatshrink(data: bytes, wb: int = 8, lb: int = 4) -> bytes:
    """Literals, and each run of one byte as a literal and a back-reference of offset 1
    (a copy that overlaps what it writes)."""
    out = Bits()
    i = 0
    while i < len(data):
        n = 1
        while i + n < len(data) and data[i + n] == data[i] and n < (1 << lb):
            n += 1
        out.literal(data[i])
        if n > 1:
            out.backref(1, n - 1, wb, lb)
        i += n
    return bytes([(wb - 4) << 4 | (lb - 3)]) + out.bytes()


def crle(data: bytes) -> bytes:
    """Scattered segments, and runs of 6 or more as repeated ones."""
    out, i, lit = bytearray(), 0, bytearray()
    while i < len(data):
        n = 1
        while i + n < len(data) and data[i + n] == data[i]:
            n += 1
        if n >= 6:
            if lit:
                out += b"\0" + uleb(len(lit)) + lit
                lit = bytearray()
            out += b"\1" + uleb(n) + data[i:i + 1]
        else:
            lit += data[i:i + n]
        i += n
    if lit:
        out += b"\0" + uleb(len(lit)) + lit
    return bytes(out)


HAND_PATCHES = {
    "hand-none": header(0, len(HAND)) + BODY,
    "hand-crle": header(2, len(HAND)) + crle(BODY),
    "hand-heatshrink": header(4, len(HAND)) + heatshrink(BODY),
    "hand-heatshrink-w12": header(4, len(HAND)) + heatshrink(BODY, 12, 4),
}


def test_hand_built_patches_from_the_documented_format(tmp_path):
    for data in HAND_PATCHES.values():  # the documented format, as detools reads it
        assert detools_apply(OLD, data) == HAND
    out = on_board(tmp_path, OLD, HAND_PATCHES, plain=True)
    assert {k: v for k, v in out.items() if k.startswith("hand")} == {
        k + s: made(HAND) for k in HAND_PATCHES for s in ("", "/plain")}


# --- bad patches ----------------------------------------------------------------------------

def bad_patches(tmp: Path) -> dict[str, tuple[bytes, str]]:
    hs = cli_patch(tmp, OLD, NEW, "-c", "heatshrink")
    none = cli_patch(tmp, OLD, NEW, "-c", "none")
    wide = cli_patch(tmp, OLD, NEW, "-c", "heatshrink", "--heatshrink-window-sz2", "13",
                     "--heatshrink-lookahead-sz2", "4")
    lzma = cli_patch(tmp, OLD, NEW, "-c", "lzma")
    hdiff = cli_patch(tmp, OLD, NEW, "-c", "none", "-t", "hdiffpatch", "-a", "hdiffpatch")
    long_extra = size(0) + size(5) + bytes(5) + size(len(HAND)) + bytes(len(HAND))
    outside = size(0) + size(2) + bytes(2) + size(0) + size(-100) + size(3) + bytes(3) + size(0) + size(0)
    return {  # name: (patch, reason)
        "truncated heatshrink": (hs[:len(hs) * 2 // 3], "patch data (heatshrink) ends early"),
        "truncated none": (none[:100_000], "patch data (none) ends early"),
        "truncated in the header": (header(4, 300_000)[:2], "patch ends early, after 2 bytes"),
        "heatshrink stream that ends early": (
            header(4, len(HAND)) + heatshrink(BODY)[:-6], "patch data (heatshrink) ends early"),
        "window larger than the device allows": (
            wide, "heatshrink window of 2**13 bytes is larger than this device allows (2**12)"),
        "output longer than the patch says": (
            header(0, len(HAND)) + long_extra, "patch extra data of %d bytes runs past the %d bytes"
            % (len(HAND), len(HAND))),
        "corrupt diff size": (header(0, len(HAND)) + size(0) + size(1 << 30) + BODY[2:],
                              "patch diff data of 1073741824 bytes runs past"),
        "reads outside the base": (header(0, 5) + outside, "patch reads bytes -98-"),
        "data after the end (none)": (none + b"\0", "patch has data after its end"),
        "data after the end (heatshrink)": (
            header(4, len(HAND)) + heatshrink(BODY + b"more"), "patch has data after its end"),
        "lzma": (lzma, "patch compression lzma is not supported (none, crle, heatshrink)"),
        "hdiffpatch": (hdiff, "not a detools sequential patch (type 2)"),
        "empty image": (header(0, 0), "patch makes an empty image"),
        "data format": (header(0, 5) + size(3) + size(0) + b"abc", "data-format patches are not supported"),
        "bad heatshrink parameters": (header(4, 5) + bytes([0x1F]), "bad heatshrink parameters"),
        "bad crle kind": (header(2, 5) + b"\x07\x01\x00", "bad crle segment kind 7"),
    }


def test_bad_patches_are_refused_with_their_reason(tmp_path):
    bad = bad_patches(tmp_path)
    names = {name: f"bad{i}" for i, name in enumerate(bad)}
    out = on_board(tmp_path / "board", OLD, {names[n]: data for n, (data, _) in bad.items()},
                   plain=True)
    for name, (_, reason) in bad.items():
        for got in (out[names[name]], out[names[name] + "/plain"]):
            assert isinstance(got, str) and reason in got, (name, got)
