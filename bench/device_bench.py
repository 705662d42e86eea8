"""Benchmark of the device side of an update, on loopback, in the real MicroPython interpreter.

Figures (printed as JSON), all measured in this run:
- `cpython_download_md5_s`: the baseline, CPython (ssl + hashlib) downloading the image from the
  local object store's pre-signed URL in 4 KB reads and hashing it;
- `mpy_download_md5_s`: the device's HTTPS client (lib/https.py) doing the same in MicroPython;
- `mpy_update_s`: `fota.update()` on the emulated ESP32: download, erase, write, read back and
  MD5 of every sector, image header check (the emulator's flash costs Python time a board
  spends in its SPI flash driver instead, so this ratio is an upper bound);
- `board_flash_model_s`: what the erases and writes of that update take on a real board by the
  datasheet timing model (sector erase 45 ms, 0.75 ms per 256-byte page);
- `min_heap_update_kb`: the smallest `-X heapsize` (what the firmware sees free) with which
  `fota.update()` still completes, found by bisection; and `min_heap_cycle_kb`, the same for a
  whole job cycle (MQTT + Jobs API + download + trial boot + confirm): the peak heap of the
  cycle, to 2 KB. The device library is loaded as .mpy files (compiled with mpy-cross, as a
  board without it frozen would hold it), so its bytecode sits in the heap.
  `modules_kb` is what importing the cycle's modules costs (gc.mem_alloc() before and after);
  `bytecode_kb` is the size of those .mpy files. Frozen into the firmware, as firmware/
  builds it, bytecode, constants and strings stay in flash; module dicts, function and class
  objects are still made in RAM. Nothing can be frozen into this unix port, but ROMFS comes
  close: `min_heap_cycle_rom_kb` is the cycle with the library in a ROMFS image (bytecode runs
  in place; tests/device/romlib.py; the image's own bytes, in the heap here only, are given on
  top), and `rom_modules_kb` what importing from it costs: the module objects, plus the
  interned strings, which frozen modules keep in flash too. So the cycle's heap with lib/
  frozen is at most `min_heap_cycle_rom_kb`. (mbedTLS buffers are not in the MicroPython heap,
  on a board either.)
  What these figures still hold that a board would not: this unix port is 64-bit (`word_bytes`),
  so every object (bytecode aside, which is bytes) takes up to twice its ESP32 size: pointers of
  8 bytes, heap blocks of 32 bytes instead of 16; byte buffers are the same size. And the
  emulated flash is Python code allocating from the same heap: `emulated_flash_bytes_per_sector`
  is what it allocates (then drops) to erase, write and read back one sector, garbage a board's
  C driver never makes; the peak of the cycle holds up to one such step.
  `min_heap_download_kb` is the same bisection for the HTTPS download and MD5 alone in the plain
  interpreter, without the emulator.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from emulator.device import Device  # noqa: E402
from emulator.flash import create_flash  # noqa: E402
from emulator.image import build_app_image  # noqa: E402
from fotatools.backend import Rollout  # noqa: E402
from fotatools.cloud import daemon  # noqa: E402
from fotatools.cloud.client import LocalBackend  # noqa: E402
from fotatools.provisioning import write_device_folder  # noqa: E402

MPY = str(Path(sys.executable).parent / "micropython")

MPY_DOWNLOAD = """
import hashlib, time, json, binascii
from fota.https import get
ca = open("certs/ca.der", "rb").read()
t0 = time.ticks_ms()
r = get(URL, ca)
h = hashlib.md5()
buf = bytearray(4096)
n = 0
while True:
    k = r.readinto(buf)
    if not k:
        break
    h.update(memoryview(buf)[:k])
    n += k
r.close()
print(json.dumps({"ms": time.ticks_diff(time.ticks_ms(), t0), "n": n,
                  "md5": binascii.hexlify(h.digest()).decode()}))
"""

MPY_UPDATE = """
import time, json, fota
from fota import clock
clock.ready("")  # the board's clock from the firmware's build time, as connect() sets it
doc = json.loads(open("doc.json").read())
t0 = time.ticks_ms()
v = fota.update(doc)
print("bench:", json.dumps({"ms": time.ticks_diff(time.ticks_ms(), t0), "version": v}))
"""

MPY_VERIFY = """
import time, json
from fota import ecdsa
key = ecdsa.public_key(PUB)
sig = ecdsa.signature(SIG)
t0 = time.ticks_us()
for _ in range(N):
    ok = ecdsa.verify(key, DIGEST, sig)
print(json.dumps({"us": time.ticks_diff(time.ticks_us(), t0) / N, "ok": ok}))
"""


def verify_times(fs: Path, env: dict[str, str], n: int = 20) -> tuple[float, float]:
    """ms per ECDSA P-256 verification: lib/ecdsa.py in MicroPython, and OpenSSL from CPython."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    k = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(b"firmware").digest()
    sig = k.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    pub = k.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    code = f"PUB = {pub!r}\nSIG = {sig!r}\nDIGEST = {digest!r}\nN = {n}\n" + MPY_VERIFY
    p = subprocess.run([MPY, "-X", "heapsize=256k", "-c", code], cwd=fs, env=env,
                       capture_output=True, text=True, check=True)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["ok"]
    t0 = time.perf_counter()
    for _ in range(n):
        k.public_key().verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    return out["us"] / 1000, (time.perf_counter() - t0) * 1000 / n


from tests.device import romlib  # noqa: E402
from tests.device.rig import ONCE as CYCLE  # noqa: E402  (the cycle the tests run)


def cpython_download(url: str, ca: Path) -> tuple[float, str]:
    ctx = ssl.create_default_context(cafile=str(ca))
    t0 = time.perf_counter()
    h = hashlib.md5()
    with urllib.request.urlopen(url, context=ctx) as r:
        while chunk := r.read(4096):
            h.update(chunk)
    return time.perf_counter() - t0, h.hexdigest()


# What a job cycle imports (the trial boot adds selftest).
CYCLE_MODULES = ("fota", "fota.core", "fota.flow", "fota.loop", "fota.jobs", "fota.awsiot", "fota.clock",
                 "fota.https", "fota.otaslot", "fota.plan", "fota.install", "fota.apps", "fota.selftest",
                 "umqtt.simple")
MODULES = """
import gc
gc.collect()
a = gc.mem_alloc()
import %s
gc.collect()
print("modules_kb", (gc.mem_alloc() - a) / 1024)
""" % ", ".join(CYCLE_MODULES)

# Allocation of the emulated flash for one sector of an update: erase+write, read back in 512s.
FLASH_SECTOR = """
import gc, micropython
from fota import otaslot
p = otaslot.slots()[1]
buf, chk = bytearray(4096), bytearray(512)
p.writeblocks(3, buf)
gc.collect()
t = micropython.mem_total()
for s in range(4, 36):
    p.writeblocks(s, buf)
    for off in range(0, 4096, 512):
        p.readblocks(s, chk, off)
print("flash_sector_bytes", (micropython.mem_total() - t) // 32)
"""

# The same loop on a Python stand-in that does nothing: the loop's own allocations.
LOOP_ONLY = FLASH_SECTOR.replace("import gc, micropython, otaslot\np = otaslot.slots()[1]", """import gc, micropython
class P:
    def writeblocks(self, n, b, o=None):
        pass
    def readblocks(self, n, b, o=None):
        pass
p = P()""")


def bytecode_kb(lib: Path) -> float:
    """Size of the .mpy files of the cycle's modules, in KB."""
    total = 0
    for m in CYCLE_MODULES:
        total += (lib / (m.replace(".", "/") + ("/__init__" if m == "fota" else "") + ".mpy")).stat().st_size
    return total / 1024


def compile_lib(dest: Path) -> None:
    """lib/ and umqtt compiled to .mpy with mpy-cross, into dest."""
    mpy_cross = str(Path(sys.executable).parent / "mpy-cross")
    (dest / "umqtt").mkdir(parents=True)
    (dest / "fota").mkdir()
    srcs = [(p, dest / "fota" / (p.stem + ".mpy")) for p in (ROOT / "lib" / "fota").glob("*.py")]
    srcs += [(p, dest / "umqtt" / (p.stem + ".mpy")) for p in (ROOT / ".deps" / "umqtt").glob("*.py")]
    from tests.device.romlib import ARCHS, _arch

    march = f"-march={ARCHS[_arch()]}"  # viper code (fota/deltaviper.py) needs the architecture
    for src, out in srcs:
        subprocess.run([mpy_cross, march, "-o", str(out), str(src)], check=True)


def device_fs(backend: LocalBackend, home: Path, work: Path, main: str,
              lib: Path | None = None) -> tuple[Path, str]:
    """A provisioned device folder: lib/ compiled to .mpy, or a copy of the folder `lib`."""
    thing = f"bench-{uuid.uuid4().hex[:6]}"
    fs = work / thing
    if lib is None:
        compile_lib(fs / "lib")
    else:
        shutil.copytree(lib, fs / "lib")
    write_device_folder(backend.provision(thing), fs, home)
    shutil.copy(ROOT / "boot.py", fs / "boot.py")  # as on the board: it runs first
    (fs / "main.py").write_text(main)
    return fs, thing


def run_update(backend, home, work, image: bytes, url: str, heap_kb: int) -> tuple[bool, dict]:
    fs, _ = device_fs(backend, home, work, MPY_UPDATE)
    doc = {"operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(image).hexdigest(),
           "bc_size": len(image), "bc_url": url}
    (fs / "doc.json").write_text(json.dumps(doc))
    flash = fs.with_name(fs.name + "-flash.bin")  # outside the device folder, which goes onto it
    create_flash(flash, build_app_image("1.0.0", size=200_000))
    with Device(flash, fs, heapsize=f"{heap_kb}k", echo=None) as dev:
        r = dev.run(max_boots=1, timeout=300)
    line = [ln for ln in r.console.splitlines() if ln.startswith("bench: ")]
    if r.exit_reason != "main-returned" or not line:
        return False, {}
    out = json.loads(line[0][7:])
    out["flash_model_s"] = r.flash_time_s
    return True, out


def run_cycle(backend, home, work, image: bytes, key: str, heap_kb: int, rom: bool = False,
              lib: Path | None = None) -> bool:
    """A whole job cycle with heap_kb of heap; rom: the library from ROMFS (the image's own
    bytes are given on top); lib: this folder as the board's /lib instead of lib/ as .mpy."""
    fs, thing = device_fs(backend, home, work, CYCLE, lib)
    if rom:
        heap_kb += -(-romlib.install(fs, CYCLE) // 1024) + 1
    flash = fs.with_name(fs.name + "-flash.bin")
    create_flash(flash, build_app_image("1.0.0", size=200_000))
    job = f"bench-{uuid.uuid4().hex[:8]}"
    url = backend.upload(work / "image.bin", key)
    doc = {"operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(image).hexdigest(),
           "bc_size": len(image), "bc_url": "${aws:iot:s3-presigned-url:%s}" % url}
    backend.create_job(job, [backend.thing_arn(thing)], doc, Rollout())
    with Device(flash, fs, heapsize=f"{heap_kb}k", echo=None) as dev:
        r = dev.run(max_boots=3, timeout=300)
    ex = [e for e in backend.list_executions(job) if e.thing_name == thing]
    return r.exit_reason == "main-returned" and bool(ex) and ex[0].status == "SUCCEEDED"


def on_board(fs: Path, key: str) -> str:
    """Run fs/main.py once on a fresh emulated board; -> the value it printed after `key`."""
    flash = create_flash(fs.with_name(fs.name + "-flash.bin"), build_app_image("1.0.0", size=200_000))
    with Device(flash, fs, heapsize="256k", echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    lines = [ln for ln in r.console.splitlines() if ln.startswith(key + " ")]
    if not lines:
        raise SystemExit(f"bench: no {key} from the board:\n{r.console}")
    return lines[0].split()[1]


def word_bytes() -> int:
    """Bytes in a machine word of this MicroPython build (8 on a 64-bit unix port, 4 on ESP32)."""
    p = subprocess.run([MPY, "-c", "import sys; print(8 if sys.maxsize > 2**32 else 4)"],
                       capture_output=True, text=True, check=True)
    return int(p.stdout.strip())


def smallest(works, lo: int, hi: int) -> int:
    """The smallest heap (KB, to 2 KB) with which works(kb) is True; works(hi) must be True."""
    if not works(hi):
        raise SystemExit(f"bench: does not complete even with {hi} KB of heap")
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_500_000, help="image size in bytes (default 1.5 MB)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (best is kept)")
    ap.add_argument("--no-heap", action="store_true", help="skip the heap bisections")
    ap.add_argument("--heap-only", action="store_true", help="only the heap figures")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fota-bench-"))
    home = work / "home"
    daemon.start(home)
    try:
        backend = LocalBackend(home)
        image = build_app_image("1.0.1", size=args.size)
        (work / "image.bin").write_bytes(image)
        backend.upload(work / "image.bin", "bench/image.bin")
        url = backend.presign("bench/image.bin", 3600)
        md5 = hashlib.md5(image).hexdigest()
        ca = Path(backend.info.ca_pem)

        fs, _ = device_fs(backend, home, work, "")
        env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(fs / "lib"), ".frozen"]))
        res: dict = {"image_bytes": len(image)}
        if not args.heap_only:
            base = []
            for _ in range(args.repeat):
                s, got = cpython_download(url, ca)
                assert got == md5
                base.append(s)

            mpy = []
            for _ in range(args.repeat):
                p = subprocess.run([MPY, "-X", "heapsize=256k", "-c", f"URL = {url!r}\n" + MPY_DOWNLOAD],
                                   cwd=fs, env=env, capture_output=True, text=True, check=True)
                out = json.loads(p.stdout.strip().splitlines()[-1])
                assert out["md5"] == md5 and out["n"] == len(image)
                mpy.append(out["ms"] / 1000)

            upd, model = [], 0.0
            for _ in range(args.repeat):
                ok, out = run_update(backend, home, work, image, url, 256)
                if not ok:
                    raise SystemExit("bench: fota.update() failed on the emulator")
                upd.append(out["ms"] / 1000)
                model = out["flash_model_s"]

            mpy_verify, c_verify = verify_times(fs, env)
            res.update({
                "mpy_ecdsa_verify_ms": round(mpy_verify, 2),
                "openssl_ecdsa_verify_ms": round(c_verify, 3),
                "mpy_ecdsa_verify_ratio": round(mpy_verify / c_verify, 1),
                "cpython_download_md5_s": round(min(base), 3),
                "mpy_download_md5_s": round(min(mpy), 3),
                "mpy_update_s": round(min(upd), 3),
                "mpy_download_ratio": round(min(mpy) / min(base), 2),
                "mpy_update_ratio": round(min(upd) / min(base), 2),
                "board_flash_model_s": round(model, 2),
            })
        if not args.no_heap:
            def download_ok(kb: int) -> bool:
                p = subprocess.run([MPY, "-X", f"heapsize={kb}k", "-c", f"URL = {url!r}\n" + MPY_DOWNLOAD],
                                   cwd=fs, env=env, capture_output=True, text=True)
                return p.returncode == 0 and md5 in p.stdout
            res["min_heap_download_kb"] = smallest(download_ok, 2, 128)
            mfs, _ = device_fs(backend, home, work, MODULES)
            res["modules_kb"] = round(float(on_board(mfs, "modules_kb")), 1)
            res["bytecode_kb"] = round(bytecode_kb(mfs / "lib"), 1)
            romlib.install(mfs, MODULES)
            res["rom_modules_kb"] = round(float(on_board(mfs, "modules_kb")), 1)
            res["word_bytes"] = word_bytes()
            ffs, _ = device_fs(backend, home, work, FLASH_SECTOR)
            lfs, _ = device_fs(backend, home, work, LOOP_ONLY)
            res["emulated_flash_bytes_per_sector"] = (int(on_board(ffs, "flash_sector_bytes"))
                                                      - int(on_board(lfs, "flash_sector_bytes")))
            res["min_heap_update_kb"] = smallest(
                lambda kb: run_update(backend, home, work, image, url, kb)[0], 4, 128)
            res["min_heap_cycle_kb"] = smallest(
                lambda kb: run_cycle(backend, home, work, image, f"bench/c-{kb}.bin", kb), 8, 256)
            res["min_heap_cycle_rom_kb"] = smallest(
                lambda kb: run_cycle(backend, home, work, image, f"bench/r-{kb}.bin", kb, rom=True), 8, 256)
        print(json.dumps(res, indent=2))
    finally:
        daemon.stop(home)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
