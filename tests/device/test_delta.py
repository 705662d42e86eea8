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
from tests.device.mpy import ROOT, run, run_json

OLD = build_app_image("1.0.0", size=300_000)
NEW = evolve(OLD, "1.0.1")
BIG_OLD = build_app_image("1.0.0", size=1_500_000)
BIG_NEW = evolve(BIG_OLD, "1.0.1", seed=2, edits=12)

APPLY = """
import json, binascii, hashlib, esp32
from fota import appimage, delta, deltaplain
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
    delta.kern = deltaplain if plain else (delta.fast or deltaplain)
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


def on_board(tmp: Path, image: bytes, patches: dict[str, bytes], plain: bool = False,
             first: list[Path] = [], console: list[str] | None = None) -> dict:
    """Apply each patch on a board running `image`; -> {name: [bytes made, SHA-256] or error}.
    `first`: folders ahead of lib/ on the module path; `console` gets the lines printed."""
    tmp.mkdir(parents=True, exist_ok=True)
    create_flash(tmp / "flash.bin", image)
    (tmp / "state").mkdir(exist_ok=True)
    jobs = []
    for name, data in patches.items():
        (tmp / name).write_bytes(data)
        jobs += [(name, False)] + ([(name, True)] if plain else [])
    path = [str(d) for d in first] + [str(ROOT / d) for d in ("emulator/port", "emulator", "lib")]
    env = {"MICROPYPATH": ":".join(path),
           "ESP32_FLASH": str(tmp / "flash.bin"), "ESP32_STATE": str(tmp / "state"),
           "ESP32_RUNNING": "0x10000"}
    lines = run(APPLY % repr(jobs), env=env, cwd=tmp, timeout=300).stdout.strip().splitlines()
    if console is not None:
        console.extend(lines)
    return json.loads(lines[-1])


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


def test_firmware_without_the_viper_emitter_applies_in_plain_bytecode(tmp_path):
    # Such a firmware cannot compile deltaviper.py: its import is a SyntaxError ("invalid
    # micropython decorator"), stood for here by a deltaviper.py that does not compile.
    import shutil

    shutil.copytree(ROOT / "lib" / "fota", tmp_path / "shadow" / "fota")
    (tmp_path / "shadow" / "fota" / "deltaviper.py").write_text("@micropython.viper(\n")
    patch = cli_patch(tmp_path, OLD, NEW, "-c", "heatshrink")
    out = on_board(tmp_path / "board", OLD, {"p": patch}, first=[tmp_path / "shadow"])
    assert out["fast"] is False
    assert out["p"] == made(NEW)


def test_firmware_short_of_iram_for_viper_code_applies_in_plain_bytecode(tmp_path):
    # On the ESP32 the viper emitter's machine code goes to IRAM (ports/esp32/main.c,
    # esp_native_code_commit: heap_caps_malloc(MALLOC_CAP_EXEC), m_malloc_fail when IRAM is
    # full): the import of deltaviper raises MemoryError. The plain-bytecode loops take over,
    # and the console says so once.
    import shutil

    shutil.copytree(ROOT / "lib" / "fota", tmp_path / "shadow" / "fota")
    (tmp_path / "shadow" / "fota" / "deltaviper.py").write_text(
        'raise MemoryError("memory allocation failed, allocating 2056 bytes")\n')
    patch = cli_patch(tmp_path, OLD, NEW, "-c", "heatshrink")
    console: list[str] = []
    out = on_board(tmp_path / "board", OLD, {"p": patch, "again": patch}, first=[tmp_path / "shadow"],
                   console=console)
    assert out["fast"] is False
    assert out["p"] == out["again"] == made(NEW)
    said = [ln for ln in console if ln.startswith("delta: viper unavailable")]
    assert said == ["delta: viper unavailable (MemoryError: memory allocation failed, allocating 2056 bytes): "
                    "plain bytecode"], console


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


# --- the FOTA flow with delta documents (the local stand-in, HTTPS, the emulated board) -------

OTA_1 = (0x190000, 0x190000 + 0x180000)  # the slot an update from ota_0 writes

def _patch(old: bytes, new: bytes, **kw) -> bytes:
    out = io.BytesIO()
    detools.create_patch(io.BytesIO(old), io.BytesIO(new), out, compression="heatshrink", **kw)
    return out.getvalue()


PATCH = _patch(OLD, NEW)
BIG_PATCH = _patch(BIG_OLD, BIG_NEW)
OTHER = evolve(OLD, "1.0.0-b", seed=9)  # a device that runs another build than the patch's base
SHA_OLD, SHA_OTHER = OLD[-32:].hex(), OTHER[-32:].hex()
corrupt = bytearray(PATCH)
corrupt[len(PATCH) // 2] ^= 0x5A
FLOW_BAD = {  # name: (patch, reason, whether a sector of the slot was written first)
    "truncated patch": (PATCH[:len(PATCH) * 2 // 3], "patch data (heatshrink) ends early", True),
    "corrupt patch": (bytes(corrupt), "MD5 mismatch", True),  # a wrong image of the right size
    "window larger than the device allows": (
        _patch(OLD, NEW, heatshrink_window_sz2=13, heatshrink_lookahead_sz2=4),
        "heatshrink window of 2**13 bytes is larger than this device allows (2**12)", False),
    "output longer than the document says": (
        _patch(OLD, NEW + b"\xff" * 4096), "patch makes %d bytes, document says %d"
        % (len(NEW) + 4096, len(NEW)), False),
    "heatshrink stream that ends early": (
        PATCH[:-40], "patch data (heatshrink) ends early", True),
}


@pytest.fixture()
def server(cloud):
    from fotatools.cloud.ca import LocalCA
    from fotatools.cloud.daemon import Paths
    from tests.device.servers import FirmwareServer

    _, home = cloud
    paths = Paths(home)
    srv = LocalCA(paths.ca).existing(paths.server, "server")
    files = {"p.hs": PATCH, "new.bin": NEW, "big.hs": BIG_PATCH,
             **{f"bad{i}.hs": data for i, (data, _, _) in enumerate(FLOW_BAD.values())}}
    with FirmwareServer(files, srv.cert_pem, srv.key_pem) as s:
        yield s


def publish(r, url: str, patch: bytes = PATCH, **change) -> str:
    doc = {"bc_url": url, "bc_enc": "delta", "bc_base": SHA_OLD, "bc_zsize": len(patch), **change}
    return r.publish(NEW, **doc)


def ops_in(log: Path, lo: int, hi: int) -> list[str]:
    """The logged flash erases and writes that touch [lo, hi)."""
    out = []
    for line in (log.read_text().splitlines() if log.exists() else []):
        kind, addr, n = line.split()
        if int(addr, 16) < hi and int(addr, 16) + int(n, 16) > lo:
            out.append(line)
    return out


def test_delta_update_is_applied_from_the_running_slot(rig, server):
    r = rig(image=OLD)
    job = publish(r, server.url("/fw/p.hs"))
    result = r.run(max_boots=4)
    assert "fota: [download] delta from base %s, %d patch bytes" % (SHA_OLD[:16], len(PATCH)) \
        in result.console, result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    assert [p for p, _ in server.requests] == ["/fw/p.hs"]  # the patch, once, nothing else


def test_patch_for_another_base_is_refused_before_any_flash_operation(rig, server, tmp_path):
    r = rig(image=OTHER)
    log = tmp_path / "ops.log"
    running = r.running_slot_bytes()
    job = publish(r, server.url("/fw/p.hs"))
    result = r.run(max_boots=2, env={"ESP32_OPLOG": str(log)})
    assert result.exit_reason == "main-returned", result.console
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    assert ex.status_details["step"] == "check"
    assert ex.status_details["reason"] == ("bad fota data: the patch is for base image %s; this "
                                           "device runs %s" % (SHA_OLD, SHA_OTHER))
    assert ops_in(log, *OTA_1) == []  # the target slot: not one erase or write
    assert r.running_slot_bytes() == running
    assert server.requests == []  # nor a byte of the patch fetched
    assert "app: done 1.0.0-b" in result.console  # the loop goes on


def test_document_with_both_gives_another_base_the_full_image(rig, server):
    r = rig(image=OTHER)
    job = publish(r, server.url("/fw/p.hs"), bc_full=server.url("/fw/new.bin"))
    result = r.run(max_boots=4)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    assert [p for p, _ in server.requests] == ["/fw/new.bin"]  # the full image, not the patch


def test_document_with_both_gives_the_base_the_patch(rig, server):
    r = rig(image=OLD)
    job = publish(r, server.url("/fw/p.hs"), bc_full=server.url("/fw/new.bin"))
    result = r.run(max_boots=4)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    assert [p for p, _ in server.requests] == ["/fw/p.hs"]


@pytest.mark.parametrize("fault", list(FLOW_BAD))
def test_bad_patch_fails_and_leaves_no_bootable_slot(rig, server, fault):
    from emulator.flash import Flash
    from tests.device.test_slot_failures import failed, unbootable, with_previous_image

    data, reason, wrote = FLOW_BAD[fault]
    i = list(FLOW_BAD).index(fault)
    r = rig(image=OLD)
    running = r.running_slot_bytes()
    before = with_previous_image(r)
    job = publish(r, server.url(f"/fw/bad{i}.hs"), patch=data)
    result = failed(r, job, reason)
    assert "app: done 1.0.0" in result.console  # the loop goes on
    assert r.running_slot_bytes() == running
    if wrote:
        unbootable(r)
    else:  # refused on the patch's header: the slot keeps its previous image
        assert Flash(r.flash).slot_bytes("ota_1") == before


def test_refused_document_fields(rig, server):
    r = rig(image=OLD)
    jobs = {publish(r, server.url("/fw/p.hs"), bc_base="12" * 31): "bc_base must be",
            publish(r, server.url("/fw/p.hs"), bc_zsize=None): "bc_zsize missing",
            publish(r, server.url("/fw/p.hs"), bc_full="http://x/new.bin"): "bc_full must be an https URL",
            publish(r, server.url("/fw/p.hs"), bc_zsize=len(PATCH) + 1):
                "server has %d bytes, document says %d" % (len(PATCH), len(PATCH) + 1)}
    for job, reason in jobs.items():  # one failed job per run of the test application
        result = r.run(max_boots=2)
        ex = r.execution(job)
        assert ex.status == "FAILED" and reason in ex.status_details["reason"], (ex, result.console)


def test_broken_connection_applies_the_patch_again_without_rewriting_flash(rig, server, tmp_path):
    r = rig(image=OLD)
    log = tmp_path / "ops.log"
    job = publish(r, server.url("/fw/p.hs"))
    r.run(max_boots=4, env={"ESP32_OPLOG": str(log)})
    clean = ops_in(log, *OTA_1)
    log.unlink()
    create_flash(r.flash, OLD)
    server.requests.clear()
    job = publish(r, server.url(f"/drop/{len(PATCH) // 2}/p.hs"))
    result = r.run(max_boots=4, env={"ESP32_OPLOG": str(log)})
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    # the patch again from its first byte (a sequential patch cannot start in the middle) ...
    assert [rng for _, rng in server.requests] == [None, None], server.requests
    assert "fota: [download] resuming at byte" in result.console, result.console
    # ... and no sector of the slot erased or written twice: as many operations as without the drop
    assert sorted(ops_in(log, *OTA_1)) == sorted(clean)


@pytest.mark.parametrize("sector", [0, 20, (len(NEW) - 1) // 4096])
def test_power_cut_mid_patch_resumes_without_rewriting_flash(rig, server, tmp_path, sector):
    r = rig(image=OLD)
    log = tmp_path / "ops.log"
    publish(r, server.url("/fw/p.hs"))
    r.run(max_boots=4, env={"ESP32_OPLOG": str(log)})
    lines = log.read_text().splitlines()
    cut = 2 + lines.index("E %x %x" % (OTA_1[0] + sector * 4096, 4096)) + 1  # erasing it
    create_flash(r.flash, OLD)
    server.requests.clear()
    job = publish(r, server.url("/fw/p.hs"))
    result = r.run(max_boots=5, cut_at=cut)
    assert result.flash_stats.get("cuts") == 1
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    # the record says how far the slot is, in 64 KB steps; the patch comes again from its start
    done = sector * 4096 // 65536 * 65536
    assert ("resuming at byte %d" % done if done else "starting at byte 0") in result.console
    assert [rng for _, rng in server.requests] == [None, None], server.requests


def test_delta_cycle_fits_the_budget_the_readme_gives(rig, server):
    # The whole job cycle of test_heap.py on a 1.5 MB image made from a patch: the window,
    # the patch and input buffers and the codec fit in the same heap as a plain download.
    from tests.device import romlib
    from tests.device.rig import ONCE
    from tests.device.test_heap import readme_budget_kb

    r = rig(image=BIG_OLD)
    app = ONCE + "print('app: library', fota.__file__)\n"
    image_kb = -(-romlib.install(r.fs, app) // 1024) + 1  # a board has the library in flash
    job = r.publish(BIG_NEW, bc_url=server.url("/fw/big.hs"), bc_enc="delta",
                    bc_base=BIG_OLD[-32:].hex(), bc_zsize=len(BIG_PATCH))
    result = r.run(heapsize=f"{readme_budget_kb() + image_kb}k")
    assert result.exit_reason == "main-returned", result.console
    assert "app: library /rom/fota/__init__.mpy" in result.console
    assert "fota: [download] delta from base" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(BIG_NEW)] == BIG_NEW


# --- the plan of a delta document (lib/fotaplan.py), in MicroPython ----------------------------

PLAN = """
import json
from fota.plan import plan, base, DocError
out = []
for doc, running in json.loads(%r):
    try:
        p = base(plan(doc, 2, 0, 1, 0x180000), running)
        out.append([p.codec, p.args, p.url, p.xsize, p.size])
    except DocError as e:
        out.append(str(e))
print(json.dumps(out))
"""
DOC = {"operation": "fota", "bc_idx": -1, "bc_crc": "0" * 32, "bc_size": 300_000,
       "bc_url": "https://h/p.hs", "bc_enc": "delta", "bc_base": "AB" * 32, "bc_zsize": 20_000}


def test_plan_of_a_delta_document():
    ab, cd = "ab" * 32, "cd" * 32
    full = dict(DOC, bc_full="https://h/new.bin")
    cases = [  # (document, the running image's SHA-256, plan or reason)
        (DOC, ab, ["delta", {"base": ab, "full": None}, "https://h/p.hs", 20_000, 300_000]),
        (full, ab, ["delta", {"base": ab, "full": "https://h/new.bin"}, "https://h/p.hs", 20_000,
                    300_000]),
        (full, cd, [None, None, "https://h/new.bin", 300_000, 300_000]),
        (DOC, cd, "the patch is for base image %s; this device runs %s" % (ab, cd)),
        (DOC, None, "the patch is for base image %s; this device runs an image without a SHA-256"
         % ab),
        (dict(DOC, bc_base=None), ab, "bc_base must be the base image's SHA-256 as 64 hex digits"),
        (dict(DOC, bc_base=7), ab, "bc_base must be"),
        (dict(DOC, bc_base="ab" * 31), ab, "bc_base must be"),
        (dict(DOC, bc_base="xy" * 32), ab, "bc_base must be"),
        (dict(DOC, bc_zsize=None), ab, "bc_zsize missing"),
        (dict(DOC, bc_zsize=True), ab, "bc_zsize must be an integer"),
        (dict(DOC, bc_zsize=0), ab, "bc_zsize 0 does not fit the 1572864-byte slot"),
        (dict(DOC, bc_zsize=0x180001), ab, "bc_zsize 1572865 does not fit"),
        (dict(DOC, bc_full="http://h/new.bin"), cd, "bc_full must be an https URL"),
        (dict(DOC, bc_full="${aws:iot:s3-presigned-url:https://h/x}"), cd,
         "bc_full is an unresolved placeholder"),
        (dict(DOC, bc_full=5), cd, "bc_full missing"),
    ]
    docs = [[{k: v for k, v in doc.items() if v is not None}, running] for doc, running, _ in cases]
    out = run_json(PLAN % json.dumps(docs))
    for (doc, running, want), got in zip(cases, out):
        if isinstance(want, str):
            assert isinstance(got, str) and want in got, (doc, got)
        else:
            assert got == want, (doc, got)
