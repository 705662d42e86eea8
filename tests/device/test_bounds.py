"""Both sides of every limit of the device code: each test here is one side of one row of
tests/device/bounds.py (just inside the limit, or just outside it). They run the device modules
in MicroPython's unix port, with what a module talks to (the clock, a UART, the MQTT session, a
partition) replaced by a small fake, so that a time limit is reached by a fake clock, never by
waiting."""

from __future__ import annotations

import json
import zlib

import pytest

from tests.device.mpy import run_json

# What every snippet has: a fake clock for a module's `time`, and fake `machine` and `esp32`
# modules for those that import them (the limits tested here never reach the flash).
PRELUDE = """
import json, sys, struct, binascii, io

class Clock:
    def __init__(self):
        self.t = 0
    def ticks_ms(self):
        return self.t
    def ticks_us(self):
        return self.t * 1000
    def ticks_add(self, a, b):
        return a + b
    def ticks_diff(self, a, b):
        return a - b
    def sleep_ms(self, ms):
        self.t += ms
    def sleep(self, s):
        self.t += int(s * 1000)

clk = Clock()

class Fake:
    pass

class Partition:
    RUNNING = 0
    TYPE_APP = 0
    TYPE_DATA = 1
    parts = []
    def __init__(self, *a):
        pass
    @classmethod
    def find(cls, *a):
        return cls.parts
    def info(self):
        return (0, 0x10, 0, 0, "ota_0", False)

machine = Fake()
machine.freq = lambda *a: 160000000
esp32 = Fake()
esp32.Partition = Partition
sys.modules["machine"] = machine
sys.modules["esp32"] = esp32

def out(v):
    print(json.dumps(v))

def error(f, *a):
    # -> "ok" if f(*a) returns, else the exception's class and text
    try:
        f(*a)
        return "ok"
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)
"""


def mp(code: str, **kw) -> object:
    return run_json(PRELUDE + code, **kw)


def cases(table):
    """(id, *args) rows -> pytest.param(*args, id=id)."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


# --- job documents (fota/plan.py) ------------------------------------------------------------

SLOT = 0x180000
GOOD = {"operation": "fota", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 1000,
        "bc_url": "https://h/fw.bin", "version": "1.0.1"}
DEFLATE = dict(GOOD, bc_enc="deflate", bc_wbits=12, bc_zsize=1000)
DELTA = dict(GOOD, bc_enc="delta", bc_base="0" * 64, bc_zsize=1000)
NORDIC = {"operation": "app_fw_update", "fwversion": "v1", "size": 1000,
          "location": {"protocol": "https:", "host": "h", "path": "fw.bin"}}
SIG = "MEUCIQ=="


def afr(file=None, **ota):
    f = {"fileid": 0, "filesize": 1000, "update_data_url": "https://h/fw.bin", "sig-sha256-ecdsa": SIG}
    f.update(file or {})
    return {"afr_ota": dict({"protocols": ["HTTP"], "streamname": "s", "files": [f]}, **ota)}


DOCS = [  # (id, document, running slot, None if taken else a part of the reason)
    ("bc_idx-inside-1", dict(GOOD, bc_idx=1), 0, None),
    ("bc_idx-outside-2", dict(GOOD, bc_idx=2), 0, "bc_idx 2: no such OTA slot (0..1)"),
    ("bc_idx-inside-0", dict(GOOD, bc_idx=0), 1, None),
    ("bc_idx-outside--2", dict(GOOD, bc_idx=-2), 1, "bc_idx -2: no such OTA slot"),
    ("bc_size-inside-slot", dict(GOOD, bc_size=SLOT), 0, None),
    ("bc_size-outside-slot+1", dict(GOOD, bc_size=SLOT + 1), 0, "bc_size 1572865 does not fit"),
    ("bc_size-inside-1", dict(GOOD, bc_size=1), 0, None),
    ("bc_size-outside-0", dict(GOOD, bc_size=0), 0, "bc_size 0 does not fit"),
    ("bc_crc-inside-32", dict(GOOD, bc_crc="a" * 32), 0, None),
    ("bc_crc-outside-31", dict(GOOD, bc_crc="a" * 31), 0, "bc_crc must be"),
    ("bc_crc-outside-33", dict(GOOD, bc_crc="a" * 33), 0, "bc_crc must be"),
    ("bc_url-inside-9", dict(GOOD, bc_url="https://h"), 0, None),
    ("bc_url-outside-8", dict(GOOD, bc_url="https://"), 0, "bc_url must be an https URL"),
    ("bc_url-char-inside-33", dict(GOOD, bc_url="https://h/f!w.bin"), 0, None),
    ("bc_url-char-outside-32", dict(GOOD, bc_url="https://h/f w.bin"), 0, "bc_url must be an https URL"),
    ("bc_url-char-outside-CRLF", dict(GOOD, bc_url="https://h/fw.bin\r\nX-Injected:1"), 0,
     "bc_url must be an https URL"),
    ("bc_url-char-inside-126", dict(GOOD, bc_url="https://h/f~w.bin"), 0, None),
    ("bc_url-char-outside-127", dict(GOOD, bc_url="https://h/f\x7fw.bin"), 0, "bc_url must be an https URL"),
    ("bc_url-char-outside-233", dict(GOOD, bc_url="https://h/f\xe9w.bin"), 0, "bc_url must be an https URL"),
    ("location-char-outside-LF", dict(NORDIC, location={"protocol": "https:", "host": "h", "path": "f\nw"}),
     0, "location must be an https URL"),
    ("deflate-bc_zsize-inside-slot", dict(DEFLATE, bc_zsize=SLOT), 0, None),
    ("deflate-bc_zsize-outside-slot+1", dict(DEFLATE, bc_zsize=SLOT + 1), 0, "bc_zsize 1572865 does not fit"),
    ("deflate-bc_zsize-inside-1", dict(DEFLATE, bc_zsize=1), 0, None),
    ("deflate-bc_zsize-outside-0", dict(DEFLATE, bc_zsize=0), 0, "bc_zsize 0 does not fit"),
    ("delta-bc_zsize-inside-slot", dict(DELTA, bc_zsize=SLOT), 0, None),
    ("delta-bc_zsize-outside-slot+1", dict(DELTA, bc_zsize=SLOT + 1), 0, "bc_zsize 1572865 does not fit"),
    ("delta-bc_zsize-inside-1", dict(DELTA, bc_zsize=1), 0, None),
    ("delta-bc_zsize-outside-0", dict(DELTA, bc_zsize=0), 0, "bc_zsize 0 does not fit"),
    ("bc_base-inside-64", dict(DELTA, bc_base="b" * 64), 0, None),
    ("bc_base-outside-63", dict(DELTA, bc_base="b" * 63), 0, "bc_base must be"),
    ("bc_base-outside-65", dict(DELTA, bc_base="b" * 65), 0, "bc_base must be"),
    ("version-inside-31", dict(GOOD, version="v" * 31), 0, None),
    ("version-outside-32", dict(GOOD, version="v" * 32), 0, "1 to 31 characters"),
    ("version-inside-1", dict(GOOD, version="v"), 0, None),
    ("version-outside-0", dict(GOOD, version=""), 0, "1 to 31 characters"),
    ("control-inside-32", dict(GOOD, version="a\x20b"), 0, None),
    ("control-outside-31", dict(GOOD, version="a\x1fb"), 0, "none a control character"),
    ("control-inside-126", dict(GOOD, version="a\x7eb"), 0, None),
    ("control-outside-127", dict(GOOD, version="a\x7fb"), 0, "none a control character"),
    ("control-inside-160", dict(GOOD, version="a\xa0b"), 0, None),
    ("control-outside-159", dict(GOOD, version="a\x9fb"), 0, "none a control character"),
    ("fileid-inside-0", afr(), 0, None),
    ("fileid-outside--1", afr({"fileid": -1}), 0, "fileid must be an integer 0..255"),
    ("fileid-inside-255", afr(files=[afr()["afr_ota"]["files"][0], dict(afr()["afr_ota"]["files"][0], fileid=255)]),
     0, None),
    ("fileid-outside-256", afr({"fileid": 256}), 0, "fileid must be an integer 0..255"),
    ("filesize-inside-1", afr({"filesize": 1}), 0, None),
    ("filesize-outside-0", afr({"filesize": 0}), 0, "filesize 0 is not a size"),
    ("filesize-inside-slot", afr({"filesize": SLOT}), 0, None),
    ("filesize-outside-slot+1", afr({"filesize": SLOT + 1}), 0, "filesize 1572865 does not fit"),
    ("filepath-inside-255", afr({"filepath": "d/" + "n" * 255}), 0, None),
    ("filepath-outside-256", afr({"filepath": "d/" + "n" * 256}), 0, "a name of 256 bytes (at most 255)"),
    ("streamname-inside-128", afr(protocols=["MQTT"], streamname="s" * 128), 0, None),
    ("streamname-outside-129", afr(protocols=["MQTT"], streamname="s" * 129), 0, "not a stream id"),
    ("streamname-inside-1", afr(protocols=["MQTT"], streamname="s"), 0, None),
    ("streamname-outside-0", afr(protocols=["MQTT"], streamname=""), 0, "not a stream id"),
    ("size-inside-slot", dict(NORDIC, size=SLOT), 0, None),
    ("size-outside-slot+1", dict(NORDIC, size=SLOT + 1), 0, "size 1572865 does not fit"),
    ("size-inside-1", dict(NORDIC, size=1), 0, None),
    ("size-outside-0", dict(NORDIC, size=0), 0, "size 0 does not fit"),
]


@pytest.mark.parametrize("doc,running,reason", cases(DOCS))
def test_document_field(doc, running, reason):
    got = mp(f"""
from fota.plan import plan
doc = json.loads({json.dumps(json.dumps(doc))})
out(error(plan, doc, 2, {running}, 1 - {running}, {SLOT}))
""")
    if reason is None:
        assert got == "ok"
    else:
        assert got.startswith("DocError: ") and reason in got, got


# --- SMP over a UART (fota/smp.py), and the MCUboot target (fota/target.py) ------------------

SMP = """
from fota import smp, cbor
smp.time = clk

def frame(seq, fields, piece=90, op=1, group=1, cmd=0):
    # An SMP answer as a server sends it on the serial line.
    body = bytearray(2048)
    n = cbor.encode(body, 0, fields)
    msg = struct.pack(">BBHHBB", 1 << 3 | op, 0, n, group, seq, cmd) + bytes(body[:n])
    pkt = struct.pack(">H", len(msg) + 2) + msg + struct.pack(">H", smp.crc16(msg))
    lines = b""
    for i in range(0, len(pkt), piece):
        lines += (b"\\x06\\x09" if i == 0 else b"\\x04\\x14") + binascii.b2a_base64(pkt[i:i + piece], newline=False) + b"\\n"
    return lines, len(msg)

UPLOAD = (3, 1, 1)  # op (write answer), group (image), command (upload)

class Uart:
    # answer(n) -> the fields of the answer to request n (from 1), or None for no answer;
    # it can be read `delay` ms after the request.
    def __init__(self, answer, delay=0, piece=90, hdr=(1, 1, 0)):
        self.answer, self.delay, self.piece, self.hdr = answer, delay, piece, hdr
        self.n, self.rx, self.at, self.sent = 0, b"", 0, False
    def write(self, b):
        self.sent = True
    def any(self):
        if self.sent:
            self.sent = False
            self.n += 1
            a = self.answer(self.n)
            if a is not None:
                self.rx, self.at = frame(s.seq, a, self.piece, *self.hdr)[0], clk.t + self.delay
        return len(self.rx) if self.rx and clk.t >= self.at else 0
    def readinto(self, buf):
        k = min(len(buf), len(self.rx))
        buf[:k] = self.rx[:k]
        self.rx = self.rx[k:]
        return k
"""


def smp(code: str) -> object:
    return mp(SMP + code)


@pytest.mark.parametrize("delay,taken", cases([("inside-2999ms", 2999, True), ("outside-3000ms", 3000, False)]))
def test_smp_answer_within_the_request_timeout(delay, taken):
    got = smp(f"""
s = smp.Smp(Uart(lambda n: {{"images": []}}, delay={delay}))
out([s.timeout_ms, error(s.request, 0, 1, 0, {{}}, 1)])
""")
    assert got == [3000, "ok" if taken else "SmpError: no answer to image state in 3000 ms"]


@pytest.mark.parametrize("answered,taken", cases([("inside-3rd-try", 3, True), ("outside-4th-try", 4, False)]))
def test_smp_tries_of_a_request(answered, taken):
    got = smp(f"""
u = Uart(lambda n: {{"off": 7}} if n == {answered} else None, hdr=UPLOAD)
s = smp.Smp(u)
r = error(s.upload, 5, b"x")
out([r, u.n])
""")
    assert got == (["ok", 3] if taken else ["SmpError: no answer to image upload in 3000 ms", 3])


@pytest.mark.parametrize("size,fits", cases([("inside-512", 512, True), ("outside-513", 513, False)]))
def test_smp_largest_request(size, fits):
    # a request message of `size` bytes (8-byte header and CBOR): {"d": bytes}
    got = smp(f"""
u = Uart(lambda n: {{}}, hdr=(3, 1, 1))
s = smp.Smp(u)
k = {size} - 8 - 6  # map, key "d", a byte string head of 3 bytes
out([error(s.request, 2, 1, 1, {{"d": bytes(k)}}, 1), u.n])
""")
    assert got == (["ok", 1] if fits else ["SmpError: request does not fit 512 bytes", 0])


@pytest.mark.parametrize("size,taken", cases([("inside-512", 512, True), ("outside-513", 513, False)]))
def test_smp_largest_answer(size, taken):
    got = smp(f"""
k = 0
while frame(0, {{"off": 1, "d": bytes(k)}})[1] < {size}:
    k += 1
assert frame(0, {{"off": 1, "d": bytes(k)}})[1] == {size}
s = smp.Smp(Uart(lambda n: {{"off": 1, "d": bytes(k)}}, hdr=UPLOAD))
out(error(s.upload, 5, b"x"))
""")
    # 513 bytes: the length field says 515 (with the CRC), more than 2 + 512 + 2 can hold
    assert got == ("ok" if taken else "SmpError: garbled answer to image upload: length field 515")


@pytest.mark.parametrize("piece,taken", cases([("inside-line-130", 96, True), ("outside-line-134", 99, False)]))
def test_smp_longest_line_of_an_answer(piece, taken):
    # a line is the 2-byte mark and the base64 of `piece` packet bytes: 130 or 134 bytes; the
    # device keeps 132 (MCUmgr's own lines are 127 at most)
    got = smp(f"""
s = smp.Smp(Uart(lambda n: {{"off": 1, "d": bytes(300)}}, piece={piece}, hdr=UPLOAD))
out(error(s.upload, 5, b"x"))
""")
    assert (got == "ok") if taken else got.startswith("SmpError: garbled answer to image upload: ")


@pytest.mark.parametrize("rc,name", cases([("inside-13", 13, "protocol too new"), ("outside-14", 14, "error")]))
def test_smp_result_codes_it_names(rc, name):
    got = smp(f"out(error(smp._check, {{'rc': {rc}}}, 'reset'))")
    assert got == f"SmpError: reset refused: rc {rc} ({name})"


TARGET = """
from fota import target, smp as smpmod
target.time = clk
class Smp:
    # the MCU's side of what SmpTarget asks: upload answers from take(sent, n) -> offset
    def __init__(self, take=None, buf_size=None, back_at=0):
        self.take, self.buf_size, self.back_at, self.calls = take, buf_size, back_at, []
    def upload(self, off, data, size=None):
        return self.take(off, len(data))
    def params(self):
        return self.buf_size
    def images(self):
        clk.t += 1
        if clk.t < self.back_at:
            raise smpmod.SmpError("no answer")
        return [{"slot": 0, "version": "1.0.0", "active": True, "confirmed": True}]
    def test(self, h):
        pass
    def reset(self):
        self.calls.append(-clk.t)

class U:
    pass

def smp_target(fake):
    t = target.SmpTarget(U())
    t.smp = fake
    return t

class F:
    size = 100
    path = None
"""


def tgt(code: str) -> object:
    return mp(TARGET + code)


@pytest.mark.parametrize("shorts,ok", cases([("inside-8", 8, True), ("outside-9", 9, False)]))
def test_smp_target_short_upload_answers(shorts, ok):
    # the MCU takes 1 byte per answer `shorts` times, then all the rest
    got = tgt(f"""
n = [0]
def take(off, k):
    n[0] += 1
    return off + (1 if n[0] <= {shorts} else k)
t = smp_target(Smp(take))
t.create(F())
t.new = "2.0.0"  # header read: the version check is not what this tests
def upload():
    t.write(0, bytes(100))
    while t.fill:
        t._send()
out([target.SHORT, error(upload), t.off])
""")
    assert got == ([8, "ok", 100] if ok else
                   [8, "TargetError: secondary took 1 of 92 bytes per answer at byte 9 of 100, 9 times: too slow", 8])


@pytest.mark.parametrize("buf_size,chunk", cases([
    ("inside-129", 129, 65), ("outside-128", 128, 256),  # at most 2 * OVERHEAD: CHUNK
    ("inside-512", 512, 448), ("outside-513", 513, 448),  # above MTU: MTU
]))
def test_smp_target_upload_chunk_from_the_mcus_buffer_size(buf_size, chunk):
    got = tgt(f"""
t = smp_target(Smp(buf_size={buf_size}))
t.create(F())
out([target.CHUNK, target.OVERHEAD, smpmod.MTU, len(t.buf)])
""")
    assert got == [256, 64, 512, chunk]


@pytest.mark.parametrize("extra,ok", cases([("inside-size", 0, True), ("outside-size+1", 1, False)]))
def test_smp_target_offset_the_mcu_reports(extra, ok):
    got = tgt(f"""
t = smp_target(Smp(lambda off, k: off + k + {extra}))
t.create(F())
t.new = "2.0.0"
out(error(t.write, 0, bytes(100)))
""")
    assert got == ("ok" if ok else "TargetError: secondary reports byte 101 of a 100-byte image")


@pytest.mark.parametrize("back,ok", cases([("inside-20000ms", 20000, True), ("outside-20001ms", 20001, False)]))
def test_smp_target_boot_time_after_its_reset(back, ok):
    # each question to the MCU takes 1 ms here; it answers from `back` ms on
    got = tgt(f"""
t = smp_target(Smp(back_at={back}))
out([t.boot_ms, error(t.state, F())])
""")
    assert got == [20000, "ok" if ok else "TargetError: secondary does not answer after its reset: no answer"]


@pytest.mark.parametrize("side", ["inside", "outside"])
def test_smp_target_wait_after_a_reset_request(side):
    # activate() asks for the reset, then waits RESET_MS (in 50 ms naps) before anything else
    got = tgt("""
f = Smp()
t = smp_target(f)
t._slot1 = lambda v: b"h"
f.images = lambda: [{"slot": 0, "version": "1.0.0", "active": True}]
t.activate(F(), "2.0.0")
out([target.RESET_MS, clk.t])
""")
    if side == "inside":
        assert got[1] >= got[0] == 1000  # not less than RESET_MS
    else:
        assert got[1] < got[0] + 50  # not a nap more


@pytest.mark.parametrize("name,ok", cases([("inside-251", "n" * 251, True), ("outside-252", "n" * 252, False)]))
def test_file_target_longest_name(name, ok):
    got = mp(f"""
from fota import target
class F:
    path = "/www/" + {name!r}
t = target.FileTarget(folder="/data")
out(error(t.where, F()))
""")
    assert got == ("ok" if ok else
                   "TargetError: filepath names a file of 252 bytes; with .new the filesystem takes 251 at most")


# --- CBOR (fota/cbor.py) ---------------------------------------------------------------------

@pytest.mark.parametrize("depth,ok", cases([("inside-8", 8, True), ("outside-9", 9, False)]))
def test_cbor_nesting(depth, ok):
    got = mp(f"""
from fota import cbor
out([cbor.MAX_DEPTH, error(cbor.decode, b"\\x81" * ({depth} - 1) + b"\\x80")])
""")
    assert got == [8, "ok" if ok else "CborError: nested too deeply"]


@pytest.mark.parametrize("value,ok", cases([("inside-2**32-1", 2**32 - 1, True), ("outside-2**32", 2**32, False)]))
def test_cbor_largest_integer(value, ok):
    got = mp(f"""
from fota import cbor
b = bytearray(16)
try:
    n = cbor.encode(b, 0, {value})
    out(cbor.decode(b[:n]))
except cbor.CborError as e:
    out(str(e))
""")
    assert got == (value if ok else "integer too large")


@pytest.mark.parametrize("head,ok", cases([("inside-27", "1b0000000000000005", True), ("outside-28", "1c", False)]))
def test_cbor_length_codes(head, ok):
    got = mp(f"""
from fota import cbor
out(error(cbor.decode, binascii.unhexlify("{head}")))
""")
    assert got == ("ok" if ok else "CborError: unsupported CBOR length")


@pytest.mark.parametrize("n,ok", cases([("inside-fills", 14, True), ("outside-one-more", 15, False)]))
def test_cbor_encode_into_its_buffer(n, ok):
    # a byte string of n bytes (1-byte head) into a 15-byte buffer
    got = mp(f"""
from fota import cbor
out(error(cbor.encode, bytearray(15), 0, bytes({n})))
""")
    assert got == ("ok" if ok else "CborError: message does not fit its buffer")


# --- AWS IoT MQTT-based file delivery (fota/streams.py) --------------------------------------

STREAMS = """
from fota import streams, cbor
streams.time = clk

class Conn:
    # The stream service over a fake MQTT session: block b of request k comes `delay` ms after
    # the request if serve(k, b); its payload is `extra` bytes longer than it should be.
    thing = "t"
    def __init__(self, size, serve=lambda k, b: True, delay=0, extra=0):
        self.size, self.serve, self.delay, self.extra = size, serve, delay, extra
        self.q, self.reqs = [], []
    def on(self, prefix, fn):
        self.prefix, self.fn = prefix, fn
    def subscribe(self, t):
        pass
    def publish(self, topic, msg):
        kind = topic[len(self.prefix):]
        if kind == "describe/json":
            body = {"c": json.loads(msg)["c"], "s": 1, "r": [{"f": 0, "z": self.size}]}
            self.q.append((clk.t, "description/json", json.dumps(body)))
            return
        req = streams._decode(memoryview(bytes(msg)))
        self.reqs.append([req["o"], req["n"]])
        for b in range(req["o"], req["o"] + req["n"]):
            if self.serve(len(self.reqs), b):
                n = min(4096, self.size - b * 4096) + self.extra
                buf = bytearray(n + 64)
                k = cbor.encode(buf, 0, {"c": req["c"], "f": 0, "i": b, "l": 4096, "p": bytes(n)})
                self.q.append((clk.t + self.delay, "data/cbor", bytes(buf[:k])))
    def wait(self, ms, one=False):
        # what comes within ms is handled when it comes; else ms pass
        if self.q and self.q[0][0] <= clk.t + ms:
            at, kind, msg = self.q.pop(0)
            clk.t = max(clk.t, at)
            self.fn(self.prefix + kind, msg)
        else:
            clk.t += ms

def read_all(sf):
    r = sf.open(0)
    buf = bytearray(4096)
    n = 0
    while True:
        k = r.readinto(buf)
        if not k:
            return n
        n += k
"""


def streams(code: str) -> object:
    return mp(STREAMS + code)


@pytest.mark.parametrize("delay,taken", cases([("inside-10000ms", 10000, True), ("outside-10001ms", 10001, False)]))
def test_stream_block_within_its_timeout(delay, taken):
    got = streams(f"""
sf = streams.StreamFile(Conn(4096, delay={delay}), "s", 0)
sf.describe()
sf.request(0, 1)
b = sf.block(0)
out([streams.TIMEOUT_MS, b is not None])
""")
    assert got == [10000, taken]


@pytest.mark.parametrize("answered,ok", cases([("inside-3rd-request", 3, True), ("outside-4th-request", 4, False)]))
def test_stream_tries_of_a_block(answered, ok):
    got = streams(f"""
c = Conn(4096, serve=lambda k, b: k == {answered})
sf = streams.StreamFile(c, "s", 0, fmt="json")
sf.fmt = "cbor"
sf.proven = True  # CBOR works: no fallback to JSON (not what this tests)
out([error(read_all, sf), len(c.reqs)])
""")
    assert got == (["ok", 3] if ok else ["OSError: stream block 0 did not come", 3])


@pytest.mark.parametrize("blocks,requests", cases([
    ("inside-8-blocks", 8, [[0, 8]]), ("outside-9-blocks", 9, [[0, 8], [8, 1]])]))
def test_stream_blocks_asked_for_at_once(blocks, requests):
    got = streams(f"""
c = Conn({blocks} * 4096)
sf = streams.StreamFile(c, "s", 0)
out([read_all(sf), c.reqs])
""")
    assert got == [blocks * 4096, requests]


@pytest.mark.parametrize("extra,ok", cases([
    ("inside-4096", 0, True), ("outside-4095", -1, False), ("outside-4097", 1, False)]))
def test_stream_block_size(extra, ok):
    got = streams(f"""
sf = streams.StreamFile(Conn(2 * 4096, extra={extra}), "s", 0)
sf.describe()
sf.request(0, 1)
out([streams.BLOCK, error(sf.block, 0)])
""")
    assert got == [4096, "ok" if ok else "StreamError: block 0 is not 4096 bytes"]


@pytest.mark.parametrize("size,ok", cases([("inside-1", 1, True), ("outside-0", 0, False)]))
def test_stream_file_size(size, ok):
    got = streams(f"""
sf = streams.StreamFile(Conn({size}), "s", 0)
out(error(sf.describe))
""")
    assert got == ("ok" if ok else "StreamError: file 0 has no size")


@pytest.mark.parametrize("entries,ok", cases([("inside-23", 23, True), ("outside-24", 24, False)]))
def test_stream_message_map_size(entries, ok):
    got = mp(f"""
from fota import streams, cbor
b = bytearray(512)
n = cbor.encode(b, 0, dict(("k%d" % i, i) for i in range({entries})))
out(error(streams._decode, memoryview(b)[:n]))
""")
    assert got == ("ok" if ok else "StreamError: not a small CBOR map")


# --- HTTPS (fota/https.py) -------------------------------------------------------------------

HTTPS = """
from fota import https
https.time = clk

class Sock:
    # the server's response; line i arrives after[i] ms after the one before
    def __init__(self, text, after=()):
        self.b = io.BytesIO(text)
        self.after = list(after)
    def readline(self, n):
        if self.after:
            clk.t += self.after.pop(0)
        return self.b.readline(n)

def response(text, after=(), timeout=30):
    try:
        r = https._response(Sock(text, after), 0, timeout)
        return ["ok", r.length]
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)
"""


def https(code: str) -> object:
    return mp(HTTPS + code)


@pytest.mark.parametrize("lines,ok", cases([("inside-64", 64, True), ("outside-65", 65, False)]))
def test_https_header_lines(lines, ok):
    got = https(f"""
head = b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n" + b"X-A: b\\r\\n" * ({lines} - 1) + b"\\r\\n"
out([https.HEADER_LINES, response(head)])
""")
    assert got == [64, ["ok", 5] if ok else "HTTPError: more than 64 header lines"]


@pytest.mark.parametrize("size,ok", cases([("inside-1024", 1024, True), ("outside-1025", 1025, False)]))
def test_https_header_line_length(size, ok):
    # a header line of `size` bytes, its CR LF included
    got = https(f"""
line = b"X-A: " + b"b" * ({size} - 7) + b"\\r\\n"
assert len(line) == {size}
out([https.LINE_MAX, response(b"HTTP/1.1 200 OK\\r\\n" + line + b"Content-Length: 5\\r\\n\\r\\n")])
""")
    assert got == [1024, ["ok", 5] if ok else "HTTPError: a header line longer than 1024 bytes"]


@pytest.mark.parametrize("late,ok", cases([("inside-30000ms", 30000, True), ("outside-30001ms", 30001, False)]))
def test_https_headers_within_the_timeout(late, ok):
    # the end of the headers comes `late` ms after the request
    got = https(f"""
out(response(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\n", (0, 0, {late})))
""")
    assert got == (["ok", 5] if ok else "HTTPError: no end of the headers in 30 s")


@pytest.mark.parametrize("refusals,ok", cases([("inside-2", 2, True), ("outside-3", 3, False)]))
def test_https_handshakes_after_certificate_date_refusals(refusals, ok):
    # each refusal over the certificate's dates moves the clock: 3 handshakes at most
    got = https(f"""
class C:
    def hint(self, e):
        return True
    def tls_ok(self):
        pass
https.clock = C()
n = [0]
def get(url, ca, start, timeout):
    n[0] += 1
    if n[0] <= {refusals}:
        raise ValueError("The certificate validity starts in the future")
    return "response"
https._get = get
out([error(https.get, "https://h/x", b""), n[0]])
""")
    assert got == (["ok", 3] if ok else ["ValueError: The certificate validity starts in the future", 3])


@pytest.mark.parametrize("url,ok", cases([
    ("inside-65535", "https://h:65535/x", True), ("outside-65536", "https://h:65536/x", False),
    ("inside-1", "https://h:1/x", True), ("outside-0", "https://h:0/x", False)]))
def test_https_port_of_a_url(url, ok):
    got = https(f"out(error(https.split_url, {url!r}))")
    assert got == ("ok" if ok else "HTTPError: bad port in URL")


# --- the clock (fota/clock.py) ---------------------------------------------------------------

CLOCK = """
import time as _time
from fota import clock

class T(Clock):
    now = 1700000000
    def gmtime(self, t):
        return _time.gmtime(t)
    def time(self):
        return self.now

ct = T()
clock.time = ct
sets = []
clock.set_time = lambda t, us=0: sets.append(t)
FL = 1700000000
clock.floor = lambda: FL

def reply(req, n=48, li=0, vn=4, stratum=2, secs=0xE0000000):
    r = bytearray(max(n, 48))
    r[0] = li << 6 | vn << 3 | 4
    r[1] = stratum
    r[24:32] = req[40:48]
    struct.pack_into("!II", r, 40, secs, 0)
    return bytes(r[:n])
"""


def clock(code: str) -> object:
    return mp(CLOCK + code)


@pytest.mark.parametrize("apart,agree", cases([("inside-60s", 60, True), ("outside-61s", 61, False)]))
def test_clock_two_sources_agree(apart, agree):
    got = clock(f"""
replies = {{"a": (FL, 0, ("10.0.0.1", 123)), "b": (FL + {apart}, 0, ("10.0.0.2", 123))}}
clock.sntp = lambda host, port: replies[host]
clock.attempt(["a", "b"], FL)
out([clock.AGREE, clock.synced])
""")
    assert got == [60, 2 if agree else 0]


@pytest.mark.parametrize("offset,reason", cases([
    ("inside-floor-1day", -86400, None), ("outside-floor-1day-1s", -86401, "is before the firmware was built"),
    ("inside-floor+20years", 7305 * 86400, None),
    ("outside-floor+20years+1s", 7305 * 86400 + 1, "is more than 20 years after the firmware was built")]))
def test_clock_times_believed_around_the_floor(offset, reason):
    got = clock(f"out([clock.SLACK, clock.AHEAD, error(clock.check, FL + {offset}, FL)])")
    assert got[:2] == [86400, 7305 * 86400]
    assert (got[2] == "ok") if reason is None else (got[2].startswith("ValueError: ") and got[2].endswith(reason))


@pytest.mark.parametrize("kw,ok", cases([
    ("length-inside-48", "n=48", True), ("length-outside-47", "n=47", False),
    ("stratum-inside-15", "stratum=15", True), ("stratum-outside-16", "stratum=16", False),
    ("version-inside-3", "vn=3", True), ("version-outside-2", "vn=2", False),
    ("version-inside-4", "vn=4", True), ("version-outside-5", "vn=5", False)]))
def test_clock_ntp_reply_fields(kw, ok):
    got = clock(f"""
req = clock.request()
out(error(clock.parse, reply(req, {kw}), req))
""")
    assert (got == "ok") if ok else got.startswith("ValueError: ")


@pytest.mark.parametrize("secs,read", cases([
    ("inside-era0-0x80000000", 0x80000000, 0x80000000), ("outside-era1-0x7fffffff", 0x7FFFFFFF, 0x17FFFFFFF)]))
def test_clock_ntp_era(secs, read):
    # RFC 4330 section 3: seconds with the top bit clear are from 2036 on (era 1)
    got = clock(f"""
req = clock.request()
out(clock.parse(reply(req, secs={secs}), req)[0])
""")
    assert got == read


@pytest.mark.parametrize("src,ok", cases([
    ("inside-65535", "h:65535", True), ("outside-65536", "h:65536", False),
    ("inside-1", "h:1", True), ("outside-0", "h:0", False)]))
def test_clock_ntp_port(src, ok):
    got = clock(f"out(error(clock.address, {src!r}))")
    assert got == ("ok" if ok else f"ValueError: bad ntp address '{src}'")


def _waits():
    return clock("""
def none(host, port):
    raise OSError(110)
clock.sntp = none
waits = []
for _ in range(5):
    clock.attempt(["a"], FL)
    waits.append(clock._due - ct.t)
out([clock.FIRST_WAIT_MS, clock.MAX_WAIT_MS, waits])
""")


def test_clock_retry_waits_below_the_cap():
    assert _waits()[2][:3] == [10000, 20000, 40000]  # from FIRST_WAIT_MS, doubling


def test_clock_retry_waits_at_the_cap():
    first, cap, waits = _waits()
    assert (first, cap, waits[3:]) == (10000, 60000, [60000, 60000])  # 80 s would be past MAX_WAIT_MS


@pytest.mark.parametrize("late,asked", cases([("inside-6h-1ms", -1, False), ("outside-6h", 0, True)]))
def test_clock_sources_asked_again_after_6_hours(late, asked):
    got = clock(f"""
n = [0]
def agree(host, port):
    n[0] += 1
    return (FL, 0, (host, 123))
clock.sntp = agree
clock.ready(["a", "b"])
assert clock.synced == 2 and n[0] == 2
ct.t = clock.RESYNC_MS + {late}
clock.ready(["a", "b"])
out([clock.RESYNC_MS, n[0] > 2])
""")
    assert got == [6 * 3600_000, asked]


@pytest.mark.parametrize("way,off,moved", cases([
    ("ahead-inside-60s", "expired", 60, False), ("ahead-outside-61s", "expired", 61, True),
    ("behind-inside-60s", "future", -60, False), ("behind-outside-61s", "future", -61, True)]))
def test_clock_back_to_the_floor_after_a_date_refusal(way, off, moved):
    # no time on trial: a clock more than AGREE s off the floor the way the refusal points goes
    # back to the floor
    text = "has expired" if way == "expired" else "starts in the future"
    got = clock(f"""
ct.now = FL + {off}
moved = clock.hint(ValueError("The certificate validity {text}"))
out([moved, sets])
""")
    assert got == ([True, [1700000000]] if moved else [False, []])


@pytest.mark.parametrize("below,set_", cases([("inside-floor", 0, False), ("outside-floor-1s", 1, True)]))
def test_clock_below_the_floor_is_set_to_it(below, set_):
    got = clock(f"""
ct.now = FL - {below}
clock.ready("")
out(sets)
""")
    assert got == ([1700000000] if set_ else [])


@pytest.mark.parametrize("n,read", cases([("inside-144", 144, True), ("outside-143", 143, False)]))
def test_clock_build_time_needs_144_bytes(n, read):
    got = clock(f"""
h = bytearray(144)
h[0] = 0xE9
struct.pack_into("<I", h, 32, 0xABCD5432)
h[112:120] = b"12:00:00"
h[128:139] = b"Jan  1 2025"
out(clock.build_time(h[:{n}]))
""")
    assert got == (1735732800 if read else 0)


# --- the Jobs API (fota/jobs.py) and the MQTT session (fota/awsiot.py) --------------------------

JOBS = """
from fota import jobs
jobs.time = clk

class Conn:
    thing = "t"
    def __init__(self, delay):
        self.delay, self.q = delay, []
    def on(self, prefix, fn):
        self.prefix, self.fn = prefix, fn
    def subscribe(self, t):
        pass
    def connected(self):
        return True
    def publish(self, topic, msg):
        body = {"clientToken": json.loads(msg)["clientToken"], "inProgressJobs": [], "queuedJobs": []}
        self.q.append((clk.t + self.delay, topic + "/accepted", json.dumps(body)))
    def wait(self, ms):
        if self.q and self.q[0][0] <= clk.t + ms:
            at, topic, msg = self.q.pop(0)
            clk.t = max(clk.t, at)
            self.fn(topic, msg)
        else:
            clk.t += ms
"""


@pytest.mark.parametrize("delay,ok", cases([("inside-10000ms", 10000, True), ("outside-10001ms", 10001, False)]))
def test_jobs_answer_within_the_timeout(delay, ok):
    got = mp(JOBS + f"""
j = jobs.Jobs(Conn({delay}))
out([jobs.TIMEOUT_MS, error(j.list)])
""")
    assert got == [10000, "ok" if ok else "JobsError: Timeout: no answer to get in 10000 ms"]


@pytest.mark.parametrize("n,kept", cases([("inside-1024", 1024, 1024), ("outside-1025", 1025, 1024)]))
def test_jobs_status_detail_length(n, kept):
    got = mp(f"""
from fota import jobs
out(len(jobs._details({{"reason": "r" * {n}}})["reason"]))
""")
    assert got == kept


AWSIOT = """
from fota import awsiot
awsiot.time = clk
open("ca.der", "wb").close()
conn = awsiot.Connection({"thing": "t", "endpoint": "e", "port": 1, "cert": "c", "key": "k", "ca": "ca.der"})
"""


@pytest.mark.parametrize("refusals,ok", cases([("inside-3", 3, True), ("outside-4", 4, False)]))
def test_mqtt_handshakes_after_certificate_date_refusals(refusals, ok, tmp_path):
    got = mp(AWSIOT + f"""
class C:
    DEFAULT = ()
    def ready(self, ntp, feed):
        pass
    def hint(self, e):
        return True
    def tls_ok(self):
        pass
awsiot.clock = C()
n = [0]
def connect():
    n[0] += 1
    if n[0] <= {refusals}:
        raise ValueError("The certificate validity has expired")
conn._connect = connect
out([awsiot.CLOCK_TRIES, error(conn.connect), n[0]])
""", cwd=tmp_path)
    assert got == ([4, "ok", 4] if ok else [4, "ValueError: The certificate validity has expired", 4])


@pytest.mark.parametrize("quiet,ping", cases([("inside-30000ms", 30000, False), ("outside-30001ms", 30001, True)]))
def test_mqtt_ping_after_half_the_keepalive(quiet, ping, tmp_path):
    got = mp(AWSIOT + f"""
class Poll:
    def register(self, *a):
        pass
    def poll(self, ms):
        pass
sel = Fake()
sel.POLLIN = 1
sel.poll = Poll
awsiot.select = sel
pings = []
cl = Fake()
cl.sock = Fake()
cl.sock.tls = None
cl.ping = lambda: pings.append(clk.t)
conn.client = cl
conn.check = lambda: None
conn.sent = 0
clk.t = {quiet}
conn.wait(0)
out([conn.keepalive, len(pings)])
""", cwd=tmp_path)
    assert got == [60, 1 if ping else 0]


def test_mqtt_read_bound_is_given_to_the_socket(tmp_path):
    # the other side of this bound, a broker that stops, is
    # test_session_bounds.py::test_a_broker_that_stops_costs_the_read_bound
    got = mp(AWSIOT + """
got = []
raw = Fake()
raw.settimeout = lambda s: got.append(s)
raw.setsockopt = lambda *a: None
ctx = Fake()
ctx.wrap_socket = lambda sock, server_hostname=None: sock
s = awsiot._TLS(ctx, "e", conn.read_s).wrap_socket(raw)
s.setblocking(True)
s.setblocking(False)
out([awsiot.READ_S, got])
""", cwd=tmp_path)
    assert got == [30, [30, 30, 0]]


# --- the device's loop (fota/loop.py): config.json's times and the back-off ------------------

LOOP = """
from fota import loop

class Stop(Exception):
    pass

class T(Clock):
    def sleep(self, s):
        self.t += int(s * 1000)
        sleeps.append(s)
        if len(sleeps) > LIMIT:
            raise KeyboardInterrupt  # out of the loop (it catches Exception)

sleeps, events, LIMIT = [], [], 1000
lt = T()
loop.time = lt

class WDT:
    def __init__(self, timeout):
        events.append(["wdt", timeout])
    def feed(self):
        pass

m = Fake()
m.WDT = WDT
loop.machine = m

class Core:
    watchdog = None
    on_trial = False
    def version(self):
        return "1.0.0"
    def testing(self):
        return self.on_trial
    def reject(self, why):
        events.append(["reject", lt.t])
        raise KeyboardInterrupt

core = Core()
loop.core = core
apps = Fake()
apps.version = lambda: "none"
apps.start = lambda reject: None
loop.apps = apps
flow = Fake()
flow.handle_fota_jobs = lambda *a, **k: None
loop.flow = flow

class Conn:
    fail_at = None  # each connect() fails at this time, if set
    def __init__(self, cfg, feed=None):
        self.up = False
    def connected(self):
        return self.up
    def connect(self):
        events.append(["connect", lt.t])
        if Conn.fail_at is not None:
            lt.t = max(lt.t, Conn.fail_at)
            raise OSError(113)
        self.up = True
    def close(self):
        self.up = False
    publishes = 1  # telemetry messages before the run stops
    def publish(self, topic, msg):
        events.append(["publish", lt.t])
        if len([e for e in events if e[0] == "publish"]) > Conn.publishes:
            raise KeyboardInterrupt

class Jobs:
    ended = 0  # terminal updates this boot made (fota/jobs.py): the shadow is reported once
    def __init__(self, conn):
        pass
    def wait(self, ms):
        lt.t += ms
        events.append(["wait", ms])
        return False

shadow = Fake()
shadow.report = lambda jobs: events.append(["shadow", lt.t])
loop.shadow = shadow
loop.Connection = Conn
loop.Jobs = Jobs
cfg = {"thing": "t"}
loop.load_config = lambda: cfg

def run():
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
"""


def loop(code: str) -> object:
    return mp(LOOP + code)


def _backoff():
    # connect() fails at once, every time: the pauses between tries, in seconds
    got = loop("""
Conn.fail_at = 0
LIMIT = 400
run()
tries = [e[1] for e in events if e[0] == "connect"]
out([(b - a) // 1000 for a, b in zip(tries, tries[1:])])
""")
    return got


def test_loop_backoff_below_its_cap():
    assert _backoff()[:6] == [1, 2, 4, 8, 16, 32]  # doubling from 1 s


def test_loop_backoff_at_its_cap():
    assert _backoff()[6:9] == [60, 60, 60]  # 64 s would be past the cap of 60 s


@pytest.mark.parametrize("setting,timeout", cases([("default-120s", None, 120000), ("config-7s", 7, 7000)]))
def test_loop_watchdog_timeout(setting, timeout):
    got = loop(f"""
if {setting!r} is not None:
    cfg["watchdog_s"] = {setting!r}
run()
out([e for e in events if e[0] == "wdt"])
""")
    assert got == [["wdt", timeout]]


@pytest.mark.parametrize("setting,waits", cases([("default-30s", None, 30), ("config-7s", 7, 7)]))
def test_loop_telemetry_period(setting, waits):
    # between two telemetry messages: `waits` waits of 1 s for a job notification
    got = loop(f"""
if {setting!r} is not None:
    cfg["telemetry_s"] = {setting!r}
run()
out([e[1] for e in events if e[0] == "wait"])
""")
    assert got == [1000] * waits


@pytest.mark.parametrize("setting,period", cases([("default-300s", None, 300), ("config-7s", 7, 7)]))
def test_loop_jobs_look_period(setting, period):
    # With no notification, the job list is looked at again (force) once `period` seconds
    # have passed since the last look, not a turn (1 s) earlier.
    got = loop(f"""
cfg["telemetry_s"] = 1
if {setting!r} is not None:
    cfg["jobs_s"] = {setting!r}
Conn.publishes = {period} + 3
looks = []
flow.handle_fota_jobs = lambda jobs, force=False, job_cbk=None: looks.append([lt.t, force])
run()
out(looks)
""")
    t0 = got[0][0]  # the look after connecting, forced
    assert got[0][1] is True
    forced = [t - t0 for t, force in got[1:] if force]
    assert forced and forced[0] == period * 1000
    assert max(t - t0 for t, force in got[1:] if not force and t - t0 < forced[0]) == period * 1000 - 1000


@pytest.mark.parametrize("setting,fail_at,rejected", cases([
    ("default-inside-120000ms", None, 120000, False), ("default-outside-120001ms", None, 120001, True),
    ("config-inside-7000ms", 7, 7000, False), ("config-outside-7001ms", 7, 7001, True)]))
def test_loop_trial_time_to_reach_aws_iot(setting, fail_at, rejected):
    # a new firmware on trial whose first connect() fails `fail_at` ms after start
    got = loop(f"""
if {setting!r} is not None:
    cfg["trial_s"] = {setting!r}
core.on_trial = True
Conn.fail_at = {fail_at}
LIMIT = 0
run()
out([e for e in events if e[0] == "reject"])
""")
    assert got == ([["reject", fail_at]] if rejected else [])


# --- the download's retries and records (fota/install.py, fota/files.py, fota/core.py) --------

DOWNLOAD = """
from fota import core, install, files
from fota.https import Broken

class W:
    # a slot writer that takes whole sectors
    def __init__(self, size):
        self.size, self.sector, self.buf = size, 0, bytearray(4096)
    @property
    def written(self):
        return self.sector * 4096
    def restart(self):
        return self.sector * 4096
    def feed_from(self, r):
        n = r.readinto(self.buf)
        if n:
            self.sector += 1
        return n

class R:
    # the file from `start`; the first `breaks` connections break after one sector
    def __init__(self, size, start, broken):
        self.total, self.pos, self.broken = size, start, broken
    def readinto(self, buf):
        if self.broken and self.pos % 8192:
            raise OSError(104)
        k = min(len(buf), self.total - self.pos)
        self.pos += k
        return k
    def close(self):
        pass

opened = []
def source(size, breaks):
    def open_(start):
        opened.append(start)
        return R(size, start, len(opened) <= breaks)
    return open_

class Image:
    def __init__(self, src):
        self.open = src
    def state(self, done):
        return None
"""


@pytest.mark.parametrize("breaks,ok", cases([("inside-2", 2, True), ("outside-3", 3, False)]))
def test_download_broken_connections(breaks, ok, tmp_path):
    got = mp(DOWNLOAD + f"""
w = W(16 * 4096)
out([core.MAX_TRIES, error(install._download, w, Image(source(w.size, {breaks}))), len(opened)])
""", cwd=tmp_path)
    assert got == ([3, "ok", 3] if ok else [3, "OSError: [Errno 104] ECONNRESET", 3])


@pytest.mark.parametrize("sectors,records", cases([("inside-64KB", 16, [65536]), ("outside-60KB", 15, [])]))
def test_download_progress_recorded_every_64_kb(sectors, records, tmp_path):
    got = mp(DOWNLOAD + f"""
saved = []
w = W({sectors} * 4096)
install._download(w, Image(source(w.size, 0)), lambda done, state: saved.append(done))
out([core.PROGRESS_EVERY, saved])
""", cwd=tmp_path)
    assert got == [65536, records]


@pytest.mark.parametrize("breaks,ok", cases([("inside-2", 2, True), ("outside-3", 3, False)]))
def test_file_download_broken_connections(breaks, ok, tmp_path):
    got = mp(DOWNLOAD + f"""
class T:
    def write(self, pos, data):
        return pos + len(data)
class F:
    id, size = 2, 16384
out([error(files._receive, T(), F(), source(F.size, {breaks}), {{}}, {{}}), len(opened)])
""", cwd=tmp_path)
    assert got == (["ok", 3] if ok else ["OSError: [Errno 104] ECONNRESET", 3])


@pytest.mark.parametrize("size,records", cases([("inside-16384", 16384, [16384]), ("outside-16383", 16383, [])]))
def test_file_progress_recorded_every_16_kb(size, records, tmp_path):
    got = mp(DOWNLOAD + f"""
saved = []
core.save = lambda rec: saved.append(cur["done"])
class T:
    def write(self, pos, data):
        return pos + len(data)
class F:
    id, size = 2, {size}
cur = {{"done": 0}}
files._receive(T(), F(), source(F.size, 0), cur, {{}})
out([core.FILE_PROGRESS_EVERY, saved])
""", cwd=tmp_path)
    assert got == [16384, records]


@pytest.mark.parametrize("hz,raised", cases([("inside-239999999", 239999999, True), ("outside-240000000", 240000000, False)]))
def test_cpu_clock_raised_below_240_mhz(hz, raised, tmp_path):
    got = mp(f"""
from fota import core
core.machine.freq = lambda *a: {hz}
out([core.FAST_HZ, core.cpu_fast()])
""", cwd=tmp_path)
    assert got == [240000000, hz if raised else None]


# --- images: compressed pieces, delta patches, ROMFS, app images, slots ----------------------

def _zpieces(sizes: list[int]) -> bytes:
    """Pieces of zeros of these sizes, each its own zlib stream (window 2**12)."""
    out = b""
    for n in sizes:
        z = zlib.compressobj(9, zlib.DEFLATED, 12)
        out += z.compress(bytes(n)) + z.flush()
    return out


@pytest.mark.parametrize("sizes,reason", cases([
    ("inside-65536", [65536, 100], None),
    ("outside-65537", [65537, 99], "piece 0 inflates past its 65536 bytes"),
    ("outside-65535", [65535, 101], "piece 0 ends at byte 65535 of the image, short of 65536")]))
def test_inflate_piece_size(sizes, reason):
    data = _zpieces(sizes)
    got = mp(f"""
from fota import inflate
data = binascii.unhexlify({data.hex()!r})
class R:
    def __init__(self, start):
        self.b, self.total = io.BytesIO(data[start:]), len(data)
    def readinto(self, buf):
        return self.b.readinto(buf)
    def close(self):
        pass
i = inflate.Inflater(R, 65636, len(data), 12).open(0)
buf = bytearray(4096)
def all_():
    while i.readinto(buf):
        pass
out([inflate.PIECE, error(all_)])
""")
    assert got == [65536, "ok" if reason is None else "InflateError: " + reason]


def _size_field(v: int) -> bytes:
    """A detools size field."""
    b = [(0x40 if v < 0 else 0) | (abs(v) & 0x3F)]
    v = abs(v) >> 6
    while v:
        b[-1] |= 0x80
        b.append(v & 0x7F)
        v >>= 7
    return bytes(b)


def _hs_literals(data: bytes) -> bytes:
    """Heatshrink data of literals only."""
    bits = "".join("1" + format(c, "08b") for c in data)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _patch(diff: bytes, window: int | None = None, total: int | None = None) -> bytes:
    """A detools sequential patch of one entry: `diff` added to the base."""
    body = _size_field(0) + _size_field(len(diff)) + diff + _size_field(0) + _size_field(0)
    made = _size_field(len(diff) if total is None else total)
    if window is None:
        return b"\x00" + made + body
    return b"\x04" + made + bytes([(window - 4) << 4 | (4 - 3)]) + _hs_literals(body)


DELTA_RUN = """
from fota import delta
class Base:
    def __init__(self, n):
        self.b = bytearray(b"\\x01" * n)
    def ioctl(self, op, arg):
        return 4096
    def readblocks(self, block, buf, off=0):
        at = block * 4096 + off
        buf[:] = self.b[at:at + len(buf)]
def apply(patch, base_len):
    p = delta.Patch(io.BytesIO(patch), Base(base_len), base_len)
    buf = bytearray(512)
    n = 0
    while True:
        k = p.readinto(buf)
        if not k:
            return n
        n += k
"""


@pytest.mark.parametrize("window,ok", cases([("inside-12", 12, True), ("outside-13", 13, False)]))
def test_delta_heatshrink_window(window, ok):
    patch = _patch(bytes(100), window=window)
    got = mp(DELTA_RUN + f"out([delta.MAX_WINDOW, error(apply, binascii.unhexlify({patch.hex()!r}), 100)])")
    assert got == [12, "ok" if ok else
                   "DeltaError: heatshrink window of 2**13 bytes is larger than this device allows (2**12)"]


@pytest.mark.parametrize("window,lookahead,ok", cases([
    ("window-inside-4", 4, 3, True), ("window-outside-3", 3, 3, False),
    ("window-inside-15", 15, 8, True), ("window-outside-16", 16, 8, False),
    ("lookahead-inside-3", 8, 3, True), ("lookahead-outside-2", 8, 2, False),
    ("lookahead-inside-window-1", 8, 7, True), ("lookahead-outside-window", 8, 8, False)]))
def test_heatshrink_parameters(window, lookahead, ok):
    got = mp(f"""
from fota import heatshrink
out(error(heatshrink.Decoder, None, {window}, {lookahead}, None))
""")
    assert got == ("ok" if ok else f"HeatshrinkError: bad heatshrink parameters: window {window} bits, "
                   f"lookahead {lookahead} bits")


@pytest.mark.parametrize("length,base,ok", cases([("inside-base", 100, 100, True), ("outside-base+1", 101, 100, False)]))
def test_delta_reads_within_its_base(length, base, ok):
    patch = _patch(bytes(length))
    got = mp(DELTA_RUN + f"out(error(apply, binascii.unhexlify({patch.hex()!r}), {base}))")
    assert got == ("ok" if ok else "DeltaError: patch reads bytes 0-101 of the 100-byte base image")


@pytest.mark.parametrize("total,ok", cases([("inside-1", 1, True), ("outside-0", 0, False)]))
def test_delta_image_size(total, ok):
    patch = _patch(bytes(total))
    got = mp(DELTA_RUN + f"out(error(apply, binascii.unhexlify({patch.hex()!r}), 100))")
    assert got == ("ok" if ok else "DeltaError: patch makes an empty image")


@pytest.mark.parametrize("field,ok", cases([
    ("inside-6-bytes", "80808080807f", True), ("outside-7-bytes", "8080808080807f", False)]))
def test_delta_size_field_length(field, ok):
    got = mp(f"""
from fota import delta
it = iter(binascii.unhexlify({field!r}))
out(error(delta._size, lambda: next(it)))
""")
    assert got == ("ok" if ok else "DeltaError: size field too long in the patch")


@pytest.mark.parametrize("field,ok", cases([
    ("inside-6-bytes", "80808080807f", True), ("outside-7-bytes", "8080808080807f", False)]))
def test_crle_length_field(field, ok):
    got = mp(f"""
from fota import delta
class R:
    def __init__(self):
        self.it = iter(binascii.unhexlify({field!r}))
    def byte(self):
        return next(self.it)
c = delta.Crle(R())
out(error(c._uleb))
""")
    assert got == ("ok" if ok else "DeltaError: size field too long in the patch")


def _vu(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _romfs(name: bytes, data: bytes = b"x") -> bytes:
    def rec(kind: int, payload: bytes) -> bytes:
        return _vu(kind) + _vu(len(payload)) + payload

    body = rec(5, _vu(len(name)) + name + rec(2, data))
    return b"\xd2\xcd\x31" + _vu(len(body)) + body


ROMWALK = """
from fota import romimage
def walk(img):
    b = io.BytesIO(img)
    rd = romimage.Reader(b.readinto, bytearray(64))
    return [list(e) for e in romimage.walk(rd, len(img))]
"""


@pytest.mark.parametrize("name,ok", cases([
    ("inside-64", b"n" * 64, True), ("outside-65", b"n" * 65, False),
    ("inside-1", b"n", True), ("outside-0", b"", False)]))
def test_romfs_name_length(name, ok):
    img = _romfs(name)
    got = mp(ROMWALK + f"out([romimage.MAX_NAME, error(walk, binascii.unhexlify({img.hex()!r}))])")
    assert got[0] == 64 and (got[1] == "ok" if ok else got[1].startswith(f"ImageError: bad name length {len(name)}"))


@pytest.mark.parametrize("char,ok", cases([
    ("inside-33", 33, True), ("outside-32", 32, False), ("inside-126", 126, True), ("outside-127", 127, False),
    ("outside-47", 47, False)]))
def test_romfs_name_characters(char, ok):
    img = _romfs(b"a" + bytes([char]) + b"b")
    got = mp(ROMWALK + f"out(error(walk, binascii.unhexlify({img.hex()!r})))")
    assert (got == "ok") if ok else got.startswith("ImageError: bad name ")


@pytest.mark.parametrize("field,ok", cases([("inside-5-bytes", "8080808001", True), ("outside-6-bytes", "808080808001", False)]))
def test_romfs_varuint_length(field, ok):
    got = mp(f"""
from fota import romimage
b = io.BytesIO(binascii.unhexlify({field!r}))
out(error(romimage.Reader(b.readinto, bytearray(64)).uint))
""")
    assert got == ("ok" if ok else "ImageError: varuint too long at byte 5")


@pytest.mark.parametrize("text,ok", cases([
    ("inside-31", "v" * 31, True), ("outside-32", "v" * 32, False), ("inside-1", "v", True), ("outside-0", " \n", False)]))
def test_application_version_file(text, ok):
    got = mp(f"""
from fota import appwrite
s = appwrite.Seen()
out([error(s.file, "VERSION", {text.encode()!r}), s.version])
""")
    assert got == (["ok", text.strip()] if ok else ["ImageError: VERSION must be 1 to 31 characters", None])


APPS = """
from fota import apps
machine.reset_cause = lambda: 3
apps.ROM = "rom"
apps._mount = lambda slot: None
"""


@pytest.mark.parametrize("text,version", cases([("inside-31", "v" * 31, "v" * 31), ("outside-32", "v" * 32, "unknown")]))
def test_adopted_application_version(text, version, tmp_path):
    (tmp_path / "rom").mkdir()
    (tmp_path / "rom" / "app.py").write_text("")
    (tmp_path / "rom" / "VERSION").write_text(text + "\n")
    got = mp(APPS + """
apps.segment = lambda: 1
apps._oversize = lambda seg, slot: None
rec = apps.load()
out([apps._adopt(rec), rec["versions"][0]])
""", cwd=tmp_path)
    assert got == [True, version]


@pytest.mark.parametrize("boot,slot", cases([("inside-1st-boot", 1, 1), ("outside-2nd-boot", 2, 0)]))
def test_application_trial_boots(boot, slot, tmp_path):
    got = mp(APPS + f"""
apps.save({{"slot": 0, "trial": None, "left": 0, "versions": ["1.0", None], "failed": None}})
apps.switch(1, "2.0")
for _ in range({boot}):
    s = apps.boot()
out([apps.TRIAL_BOOTS, s])
""", cwd=tmp_path)
    assert got == [1, slot]


@pytest.mark.parametrize("extra,ok", cases([("inside-capacity", 0, True), ("outside-capacity+1", 1, False)]))
def test_application_capacity_leaves_the_reserve(extra, ok, tmp_path):
    # a filesystem of 900 free 4 KB blocks and no application yet: 900 * 4096 - RESERVE bytes
    got = mp(APPS + f"""
from fota import install
class OS:
    def statvfs(self, p):
        return (4096, 4096, 1000, 900, 900, 0, 0, 0, 0, 255)
apps.os = OS()
apps.segment = lambda: None
cap = 900 * 4096 - apps.RESERVE
doc = {{"operation": "fota", "target": "app", "bc_idx": -1, "bc_crc": "0" * 32, "bc_size": cap + {extra},
       "bc_url": "https://h/app.rom"}}
out([apps.RESERVE, error(install.plan_for, doc)])
""", cwd=tmp_path)
    assert got == [65536, "ok" if ok else "DocError: bc_size 3620865 does not fit the 3620864-byte slot"]


@pytest.mark.parametrize("payload,why", cases([
    ("inside-100", 96, None), ("outside-101", 97, "ROMFS slot 0 holds an image of 101 bytes, more than the slot's 100")]))
def test_romfs_image_fits_its_slot(payload, why):
    # a header of 4 bytes (magic, a 1-byte length) and the payload, in a slot of 100 bytes
    got = mp(f"""
from fota import apps
apps._half = lambda seg: 100
seg = bytearray(200)
seg[0:4] = b"\\xd2\\xcd\\x31" + bytes([{payload}])
out(apps._oversize(seg, 0))
""")
    assert got == why


SLOTS = """
from fota import otaslot
class Part:
    def __init__(self, sub=0x11, blocks=4):
        self.sub, self.blocks = sub, blocks
    def info(self):
        return (0, self.sub, 0x200000 + self.sub, self.blocks * 4096, "p", False)
    def ioctl(self, op, arg):
        return self.blocks
    def readblocks(self, *a):
        pass
"""


@pytest.mark.parametrize("size,ok", cases([
    ("inside-slot", 4 * 4096, True), ("outside-slot+1", 4 * 4096 + 1, False),
    ("inside-1", 1, True), ("outside-0", 0, False)]))
def test_slot_writer_image_size(size, ok):
    got = mp(SLOTS + f"out(error(otaslot.SlotWriter, Part(), {size}))")
    assert got == ("ok" if ok else f"SlotError: image of {size} bytes does not fit the 16384-byte slot")


@pytest.mark.parametrize("start,ok", cases([
    ("inside-size", 8192, True), ("outside-size+sector", 12288, False),
    ("inside-sector", 4096, True), ("outside-sector-1", 4095, False)]))
def test_slot_writer_resume_offset(start, ok):
    got = mp(SLOTS + f"out(error(otaslot.SlotWriter, Part(), 8192, {start}))")
    assert got == ("ok" if ok else f"SlotError: resume offset {start} is not a sector boundary")


@pytest.mark.parametrize("subtypes,slots", cases([
    ("inside-0x10-0x1f", [0x1F, 0x10], [0x10, 0x1F]), ("outside-0x00-0x20", [0x00, 0x20], [])]))
def test_ota_slot_subtypes(subtypes, slots):
    got = mp(SLOTS + f"""
Partition.parts = [Part(s) for s in {subtypes}]
out([p.sub for p in otaslot.slots()])
""")
    assert got == slots


@pytest.mark.parametrize("seg,ok", cases([("inside-fills-the-slot", 4063, True), ("outside-16-bytes-more", 4064, False)]))
def test_app_image_fits_its_slot(seg, ok):
    # one segment of `seg` bytes: 24 + 8 + seg, padded to 16, in a slot of one 4 KB block
    got = mp(f"""
from fota import appimage
img = bytearray(4096)
img[0], img[1] = 0xE9, 1
struct.pack_into("<II", img, 24, 0x3F400020, {seg})
class Part:
    def ioctl(self, op, arg):
        return 4096 if op == 5 else 1
    def readblocks(self, block, buf, off=0):
        buf[:] = img[block * 4096 + off:block * 4096 + off + len(buf)]
out(error(appimage.length, Part()))
""")
    assert got == ("ok" if ok else "ImageError: app image runs past its slot")


@pytest.mark.parametrize("pieces,ok", cases([("inside-8-pieces", 8, True), ("outside-7-pieces", 7, False)]))
def test_self_test_heap(pieces, ok):
    # the heap gives `pieces` buffers of 4 KB, then no more
    got = mp(f"""
from fota import selftest
n = [0]
def give(k):
    n[0] += 1
    if n[0] > {pieces}:
        raise MemoryError
    return None
selftest.bytearray = give
out([selftest.MIN_FREE, selftest.PIECE, selftest.memory()])
""")
    assert got[:2] == [30000, 4096]
    assert got[2] is None if ok else got[2].startswith("heap could not give 30000 bytes in 4096-byte pieces (got 28672")


@pytest.mark.parametrize("up,joined", cases([("inside-20000ms", 20000, True), ("outside-20001ms", 20001, False)]))
def test_boot_wifi_timeout(up, joined, tmp_path):
    from tests.device.mpy import ROOT

    (tmp_path / "config.json").write_text(json.dumps({"wifi": {"ssid": "s"}}))
    got = mp(f"""
net = Fake()
net.STA_IF = 0
class WLAN:
    def __init__(self, i):
        pass
    def active(self, on):
        pass
    def isconnected(self):
        return clk.t >= {up}
    def connect(self, ssid, pw):
        pass
    def ifconfig(self):
        return ("10.0.0.2",)
net.WLAN = WLAN
sys.modules["network"] = net
sys.modules["time"] = clk
src = open({str(ROOT / "boot.py")!r}).read().replace("\\napplication()\\n", "\\n")
exec(src, {{"__name__": "boot"}})
out([clk.t, WLAN(0).isconnected()])
""", cwd=tmp_path)
    assert got == [20000, joined]


@pytest.mark.parametrize("tries,reason", cases([
    ("inside-3rd-boot", 2, "afr_ota images are code-signed: this device has no signer key"),
    ("outside-4th-boot", 3, "interrupted 3 times")]))
def test_files_step_boots_after_power_cuts(tries, reason, tmp_path):
    # the record says the files step began `tries` times: one more goes on (to the next check,
    # here the signer key this device lacks), or the job ends
    got = mp(DOWNLOAD + f"""
ends = []
class Job:
    id = "j"
    def update(self, status, details):
        ends.append(details["reason"])
install.signer_key = lambda: None
files.run(None, Job(), [], {{"job": "j", "step": "files", "slot": -1, "tries": {tries}, "files": {{}}}})
out(ends)
""", cwd=tmp_path)
    assert got == [reason]


def test_clock_ntp_timeout_is_given_to_the_socket():
    got = clock("""
got = []
class S:
    def settimeout(self, s):
        got.append(s)
    def connect(self, a):
        pass
    def send(self, b):
        pass
    def recv(self, n):
        raise OSError(110)
    def close(self):
        pass
sock = Fake()
sock.AF_INET, sock.SOCK_DGRAM = 2, 2
sock.getaddrinfo = lambda *a: [(2, 2, 0, "", ("10.0.0.1", 123))]
sock.socket = lambda *a: S()
clock.socket = sock
out([clock.TIMEOUT_S, got, error(clock.sntp, "h")])
""")
    assert got == [1, [1], "OSError: [Errno 110] ETIMEDOUT"]


def test_clock_ntp_timeout_is_no_answer():
    # the other side: a source that does not answer within it is passed over, and said so
    from tests.device.mpy import run

    p = run(PRELUDE + CLOCK + """
def none(host, port):
    raise OSError(110)
clock.sntp = none
clock.attempt(["a"], FL)
out(clock.synced)
""")
    assert "clock: NTP a: no answer in 1 s" in p.stdout and p.stdout.splitlines()[-1] == "0"


# --- lengths an item gives itself: never past what holds it --------------------------------

def _romfs_claiming(record_extra: int = 0, data_extra: int = 0) -> bytes:
    """A ROMFS image of one file whose file record, or its data record, says it is longer than
    it is by that many bytes (the image's own length counts what is there)."""
    def rec(kind: int, payload: bytes, extra: int = 0) -> bytes:
        return _vu(kind) + _vu(len(payload) + extra) + payload

    body = rec(5, _vu(1) + b"f" + rec(2, b"data", data_extra), record_extra)
    return b"\xd2\xcd\x31" + _vu(len(body)) + body


@pytest.mark.parametrize("extra,reason", cases([
    ("inside-ends-with-its-folder", 0, None), ("outside-one-byte-past", 1, "record at byte 6 runs past its folder")]))
def test_romfs_record_within_its_folder(extra, reason):
    img = _romfs_claiming(record_extra=extra)
    got = mp(ROMWALK + f"out(error(walk, binascii.unhexlify({img.hex()!r})))")
    assert got == ("ok" if reason is None else "ImageError: " + reason)


@pytest.mark.parametrize("extra,reason", cases([
    ("inside-ends-with-its-file", 0, None), ("outside-one-byte-past", 1, "f: data runs past its file")]))
def test_romfs_data_within_its_file(extra, reason):
    img = _romfs_claiming(data_extra=extra)
    got = mp(ROMWALK + f"out(error(walk, binascii.unhexlify({img.hex()!r})))")
    assert got == ("ok" if reason is None else "ImageError: " + reason)


@pytest.mark.parametrize("head,ok", cases([("inside-3", "43", True), ("outside-4", "44", False)]))
def test_cbor_string_within_its_message(head, ok):
    # a byte string head saying 3 or 4 bytes, and 3 bytes
    got = mp(f"""
from fota import cbor
out(error(cbor.decode, binascii.unhexlify("{head}616263")))
""")
    assert got == ("ok" if ok else "CborError: message ends inside an item")


@pytest.mark.parametrize("head,ok", cases([("inside-3", "43", True), ("outside-4", "44", False)]))
def test_stream_string_within_its_message(head, ok):
    got = mp(f"""
from fota import streams
out(error(streams._decode, memoryview(binascii.unhexlify("a16170{head}616263"))))
""")
    assert got == ("ok" if ok else "StreamError: CBOR string past the message")


def _der_signature(r_len: int) -> bytes:
    r = b"\x00" * (r_len - 32) + b"\x11" * 32
    s = b"\x22" * 32
    body = bytes([2, len(r)]) + r + bytes([2, len(s)]) + s
    return bytes([0x30, len(body)]) + body


@pytest.mark.parametrize("r_len,ok", cases([("inside-33", 33, True), ("outside-34", 34, False)]))
def test_signature_integer_length(r_len, ok):
    der = _der_signature(r_len)
    got = mp(f"""
from fota import ecdsa
out(error(ecdsa.signature, binascii.unhexlify({der.hex()!r})))
""")
    assert got == ("ok" if ok else "SignatureError: malformed signature")


# the P-256 generator as a public key: an uncompressed point, and in a SubjectPublicKeyInfo
G = bytes.fromhex("046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e16"
                  "2bce33576b315ececbb6406837bf51f5")
SPKI = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + G


@pytest.mark.parametrize("key,ok", cases([
    ("inside-65", G, True), ("outside-64", G[1:], False), ("inside-91", SPKI, True), ("outside-92", b"\x00" + SPKI, False)]))
def test_public_key_length(key, ok):
    got = mp(f"""
from fota import ecdsa
out(error(ecdsa.public_key, binascii.unhexlify({key.hex()!r})))
""")
    assert got == ("ok" if ok else "SignatureError: not an uncompressed P-256 public key")
