"""lib/cbor.py, lib/smp.py's CRC and lib/targets.py's MCUboot header reading, in MicroPython,
against the references in CPython: cbor2, crcmod's CRC-16/XMODEM (as the `smp` package frames
SMP), and images made by MCUboot's imgtool."""

from __future__ import annotations

import binascii
import json
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest
from smp.packet import crc16_func

from tests.device.mpy import run_json


def mp(code: str) -> object:
    return run_json("import json, binascii\n" + code)


SMP_ANSWERS = [
    {"images": [{"slot": 0, "version": "1.0.0", "hash": bytes(range(32)), "bootable": True,
                 "pending": False, "confirmed": True, "active": True, "permanent": False},
                {"slot": 1, "version": "1.1.0.7", "hash": b"\xff" * 32, "bootable": True,
                 "pending": True, "confirmed": False, "active": False, "permanent": False}],
     "splitStatus": 0},
    {"off": 70000},
    {"rc": 3},
    {"err": {"group": 1, "rc": 30}},
    {"buf_size": 2048, "buf_count": 4},
    {"n": -1, "m": -300, "t": "é"},
]


@pytest.mark.parametrize("value", SMP_ANSWERS, ids=range(len(SMP_ANSWERS)))
def test_decode_what_an_smp_server_answers(value):
    for encoded in (cbor2.dumps(value), _indefinite(value)):
        out = mp(f"""
from fota import cbor
v = cbor.decode(binascii.unhexlify("{encoded.hex()}"))
def plain(x):
    if isinstance(x, dict):
        return {{k: plain(y) for k, y in x.items()}}
    if isinstance(x, list):
        return [plain(y) for y in x]
    return {{"b": binascii.hexlify(x).decode()}} if isinstance(x, bytes) else x
print(json.dumps(plain(v)))
""")
        assert out == json.loads(json.dumps(value, default=lambda b: {"b": b.hex()}))


def _indefinite(value) -> bytes:
    # zcbor (Zephyr's SMP server) writes maps and arrays with indefinite lengths
    if isinstance(value, dict):
        return b"\xbf" + b"".join(cbor2.dumps(k) + _indefinite(v) for k, v in value.items()) + b"\xff"
    if isinstance(value, list):
        return b"\x9f" + b"".join(_indefinite(v) for v in value) + b"\xff"
    return cbor2.dumps(value)


def test_encode_an_upload_request():
    out = mp("""
from fota import cbor
buf = bytearray(400)
n = cbor.encode(buf, 0, {"off": 0, "data": bytes(range(200)), "image": 0, "len": 123456,
                         "confirm": False, "neg": -70000})
print(json.dumps(binascii.hexlify(buf[:n]).decode()))
""")
    assert cbor2.loads(bytes.fromhex(out)) == {"off": 0, "data": bytes(range(200)), "image": 0,
                                               "len": 123456, "confirm": False, "neg": -70000}


ENCODED = [True, False, None, 0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, -1, -24, -25,
           -256, -257, -2**32, "", "a" * 23, "a" * 24, "é", b"", b"x" * 23, b"x" * 24, b"y" * 256, [], [None],
           [True, [False, None, 1]], {}, {"k": None}, {"a": [1, b"\x00"], "b": {"c": -1}}]


def test_encode_writes_what_cbor2_writes_for_each_kind_and_length():
    out = mp(f"""
from fota import cbor
res = []
for v in {ENCODED!r}:
    buf = bytearray(400)
    n = cbor.encode(buf, 0, v)
    res.append(binascii.hexlify(buf[:n]).decode())
print(json.dumps(res))
""")
    assert out == [cbor2.dumps(v).hex() for v in ENCODED]


def test_encode_refuses_integers_past_32_bits():
    out = mp("""
from fota import cbor
res = []
for v in (2**32, -2**32 - 1):
    try:
        cbor.encode(bytearray(16), 0, v)
        res.append("encoded")
    except cbor.CborError as e:
        res.append(str(e))
print(json.dumps(res))
""")
    assert out == ["integer too large"] * 2


GARBAGE = ["", "a1", "a16161", "5f", "c0", "fb3ff0000000000000", "a1616101ff", "01 02",
           "9f" * 20 + "ff" * 20, "7a00010000", "62ffff", "a2616101"]


@pytest.mark.parametrize("hexdata", GARBAGE)
def test_garbage_is_one_error(hexdata):
    out = mp(f"""
from fota import cbor
try:
    print(json.dumps(["ok", repr(cbor.decode(binascii.unhexlify("{hexdata.replace(' ', '')}")))]))
except cbor.CborError as e:
    print(json.dumps(["error", str(e)]))
""")
    assert out[0] == "error", out


def test_crc16_is_xmodem_as_smp_frames_it():
    data = bytes(range(256)) * 3 + b"\x08\x00\x00\x04\x00\x01\x00\x00"
    out = mp(f"""
from fota import smp
d = binascii.unhexlify("{data.hex()}")
print(json.dumps([smp.crc16(d), smp.crc16(b""), smp.crc16(d[-8:])]))
""")
    assert out == [crc16_func(data), crc16_func(b""), crc16_func(data[-8:])]


@pytest.mark.parametrize("version,shown", [("1.2.3", "1.2.3"), ("2.0.300+7", "2.0.300.7"), ("0.9.0+0", "0.9.0")])
def test_version_from_an_imgtool_image(tmp_path: Path, version, shown):
    raw = tmp_path / "app.bin"
    raw.write_bytes(bytes(range(256)) * 20)
    out = tmp_path / "app.signed.bin"
    subprocess.run([str(Path(sys.executable).parent / "imgtool"), "sign", "--version", version,
                    "--header-size", "0x200", "--slot-size", "0x20000", "--pad-header", str(raw), str(out)],
                   check=True, capture_output=True)
    head = out.read_bytes()[:32]
    got = mp(f"""
from fota import target
print(json.dumps(target.mcuboot_version(binascii.unhexlify("{head.hex()}"))))
""")
    assert got == shown


def test_an_image_that_is_not_mcubooted_is_named():
    got = mp("""
from fota import target
try:
    target.mcuboot_version(bytes(32))
except target.TargetError as e:
    print(json.dumps(str(e)))
""")
    assert got == "not an MCUboot image (header magic 00000000)"


LINES = """
import json
from fota import smp
class Line:  # the UART: quiet, or a console that never falls quiet (and never answers)
    def __init__(self, babble):
        self.babble = babble
    def any(self):
        return 64 if self.babble else 0
    def readinto(self, b):
        line = b"console: " + b"tick " * 10 + b"....\\n"  # 64 bytes
        b[:] = line[:len(b)]
        return len(b)
    def write(self, b):
        return len(b)
fed = [0]
def feed():
    fed[0] += 1
out = []
for babble in (False, True):
    fed[0] = 0
    try:
        smp.Smp(Line(babble), 200, feed).images()
        out.append("answered")
    except smp.SmpError as e:
        out.append([str(e), fed[0] > 0])
print(json.dumps(out))
"""


def test_every_wait_for_an_answer_feeds_and_ends():
    # The watchdog is fed while an answer is awaited, on a quiet line and on one that never
    # falls quiet; the drain before each request ends too (it used to read for as long as
    # bytes came).
    out = run_json(LINES, timeout=30)
    assert out == [["no answer to image state in 200 ms", True]] * 2
