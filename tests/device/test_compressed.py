"""Compressed images ("bc_enc": "deflate"): inflated on the device while they stream into the
slot, resumed after a broken connection and after a power cut at a piece boundary, and every
bad compressed file (truncated, corrupt, a decompression bomb, data after the end, a window
the device does not allow) ends the job FAILED with its reason, the running firmware as it
was, the target slot unbootable and the loop alive."""

from __future__ import annotations

import hashlib
import random
import re
import zlib

import pytest

from emulator.flash import Flash, create_flash
from emulator.image import build_app_image
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from fotatools.release import PIECE, compress_image
from tests.device.servers import FirmwareServer
from tests.device.test_power_cuts import check_consistent
from tests.device.test_slot_failures import failed, unbootable, with_previous_image
from tests.reliability.plugin import full

# An image that compresses (frozen Python source), 6 pieces of 64 KB and a short one; its
# piece FAR_PIECE repeats 6000 bytes at once, which a 32 KB window reaches back to, a 4 KB one not.
FAR = hashlib.sha256(b"far").hexdigest() * 188
NEW = build_app_image("1.0.1", payload={"a.py": "a = '%s'\nb = '%s'\n" % (FAR, FAR),
                                        "big.py": "".join(
    "def f%d(x):\n    return x * %d + %d\n" % (i, i, i * 7) for i in range(9000))})
MD5 = hashlib.md5(NEW).hexdigest()
PACKED = compress_image(NEW, 12)


def piece(data: bytes, wbits: int = 12) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


def starts(packed: bytes) -> list[int]:
    """Offsets of the pieces in the compressed file."""
    out, pos = [], 0
    while pos < len(packed):
        out.append(pos)
        d = zlib.decompressobj()
        d.decompress(packed[pos:])
        pos = len(packed) - len(d.unused_data)
    return out


OFFSETS = starts(PACKED)
LAST = (len(NEW) - 1) // PIECE
CUT = len(PACKED) - 3000  # where the truncated file ends, and its piece
CUT_PIECE = max(i for i, o in enumerate(OFFSETS) if o < CUT)
MORE = piece(b"more")
FAR_PIECE = NEW.find(FAR.encode()) // PIECE
assert NEW.find(FAR.encode()) // PIECE == (NEW.rfind(FAR.encode()) + len(FAR)) // PIECE
pieces = [piece(NEW[i:i + PIECE]) for i in range(0, len(NEW), PIECE)]
corrupt = bytearray(PACKED)
corrupt[OFFSETS[3] - 1] ^= 0x55  # the Adler-32 of piece 2
BAD = {  # name: (compressed file, reason)
    "truncated": (PACKED[:CUT], "compressed file ends in piece %d" % CUT_PIECE),
    "corrupt": (bytes(corrupt), "piece 2 is not valid zlib data"),
    "bomb in a piece": (b"".join(pieces[:1] + [piece(NEW[PIECE:2 * PIECE] + bytes(1 << 20))]
                                  + pieces[2:]), "piece 1 inflates past its 65536 bytes"),
    "bomb at the end": (b"".join(pieces[:-1] + [piece(NEW[LAST * PIECE:] + bytes(1 << 20))]),
                        "piece %d inflates past its %d bytes" % (LAST, len(NEW) - LAST * PIECE)),
    "data after the end": (PACKED + MORE, "%d bytes after the last piece" % len(MORE)),
    "piece ends early": (b"".join(pieces[:3] + [piece(NEW[3 * PIECE:4 * PIECE - 100])]
                                  + pieces[4:]), "piece 3 ends at byte"),
    "not zlib": (b"\x1f\x8b" + PACKED[2:], "piece 0 is not valid zlib data"),
    "window past the document's": (b"".join(
        pieces[:FAR_PIECE] + [piece(NEW[FAR_PIECE * PIECE:(FAR_PIECE + 1) * PIECE], 15)]
        + pieces[FAR_PIECE + 1:]), "piece %d is not valid zlib data" % FAR_PIECE),
}


@pytest.fixture()
def server(cloud):
    _, home = cloud
    paths = Paths(home)
    srv = LocalCA(paths.ca).existing(paths.server, "server")
    files = {"fw.z": PACKED, **{f"bad{i}.z": data for i, (data, _) in enumerate(BAD.values())}}
    with FirmwareServer(files, srv.cert_pem, srv.key_pem) as s:
        yield s


def publish(r, url: str, **change) -> str:
    doc = {"bc_url": url, "bc_enc": "deflate", "bc_wbits": 12, "bc_zsize": len(PACKED), **change}
    return r.publish(NEW, **doc)


def test_compressed_image_is_inflated_into_the_slot(rig, server):
    r = rig()
    job = publish(r, server.url("/fw/fw.z"))
    result = r.run(max_boots=4)
    assert "fota: [download] deflate, window 4096 bytes" in result.console, result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    assert [p for p, _ in server.requests] == ["/fw/fw.z"]  # the compressed file, once


def test_broken_connection_resumes_at_the_piece_it_broke_in(rig, server):
    r = rig()
    drop = OFFSETS[3] + 1000  # inside piece 3
    job = publish(r, server.url(f"/drop/{drop}/fw.z"))
    result = r.run(max_boots=4)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    # the second request starts at piece 3 in the compressed file, not at 0
    assert [rng for _, rng in server.requests] == [None, f"bytes={OFFSETS[3]}-"], server.requests
    # the slot goes on from its last whole sector, in piece 3: the inflater drops what it has
    m = re.search(r"fota: \[download\] resuming at byte (\d+)", result.console)
    assert m and 3 * PIECE <= int(m.group(1)) < 4 * PIECE, result.console


def test_power_cut_resumes_at_the_recorded_piece(rig, server, tmp_path):
    r = rig()
    # Cut at the erase of sector 20 of ota_1 (found in a clean update's log of flash
    # operations): the record says 64 KB (piece 1 onwards is still to come) are in flash.
    log = tmp_path / "ops.log"
    publish(r, server.url("/fw/fw.z"))
    r.run(max_boots=4, env={"ESP32_OPLOG": str(log)})
    cut = 2 + log.read_text().splitlines().index("E %x %x" % (0x190000 + 20 * 4096, 4096)) + 1
    create_flash(r.flash, build_app_image("1.0.0"))
    server.requests.clear()
    job = publish(r, server.url("/fw/fw.z"))
    result = r.run(max_boots=5, cut_at=cut)
    assert result.flash_stats.get("cuts") == 1
    assert result.exit_reason == "main-returned", result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    assert "fota: [download] resuming at byte 65536" in result.console, result.console
    # after the cut, the download goes on from piece 1 of the compressed file
    assert server.requests[-1] == ("/fw/fw.z", f"bytes={OFFSETS[1]}-"), server.requests


@pytest.mark.parametrize("fault", list(BAD))
def test_bad_compressed_file_fails_and_leaves_no_bootable_slot(rig, server, fault):
    data, reason = BAD[fault]
    i = list(BAD).index(fault)
    r = rig()
    running = r.running_slot_bytes()
    before = with_previous_image(r)
    job = publish(r, server.url(f"/fw/bad{i}.z"), bc_zsize=len(data))
    result = failed(r, job, reason)
    assert r.execution(job).status_details["step"] == "download"
    assert "app: done 1.0.0" in result.console  # the loop goes on
    assert r.running_slot_bytes() == running
    if fault == "not zlib":  # nothing was written: the slot keeps its previous image
        assert Flash(r.flash).slot_bytes("ota_1") == before
    else:
        unbootable(r)


@pytest.mark.parametrize("change,reason", [
    ({"bc_wbits": 15}, "bc_wbits 15: this device inflates windows of 2**9..2**12 bytes"),
    ({"bc_wbits": 8}, "bc_wbits 8: this device inflates windows of 2**9..2**12 bytes"),
    ({"bc_enc": "lzma"}, "bc_enc lzma is not supported"),
    ({"bc_zsize": None}, "bc_zsize missing"),
    ({"bc_zsize": len(PACKED) + 1}, "server has %d bytes, document says %d" % (len(PACKED), len(PACKED) + 1)),
], ids=["window too large", "window too small", "other encoding", "no zsize", "zsize wrong"])
def test_refused_before_a_byte_is_written(rig, server, change, reason):
    r = rig()
    running = r.running_slot_bytes()
    before = with_previous_image(r)
    job = publish(r, server.url("/fw/fw.z"), **change)
    failed(r, job, reason)
    assert Flash(r.flash).slot_bytes("ota_1") == before  # the target slot as it was
    assert r.running_slot_bytes() == running


def test_compressed_cycle_fits_the_budget_the_readme_gives(rig, server):
    # The whole job cycle of test_heap.py, with the image inflated on the way: the window,
    # the inflater's state and its read-ahead fit in the same heap as a plain download.
    from tests.device import romlib
    from tests.device.rig import ONCE
    from tests.device.test_heap import readme_budget_kb

    r = rig()
    app = ONCE + "print('app: library', fota.__file__)\n"
    image_kb = -(-romlib.install(r.fs, app) // 1024) + 1  # a board has the library in flash
    job = publish(r, server.url("/fw/fw.z"))
    result = r.run(heapsize=f"{readme_budget_kb() + image_kb}k")
    assert result.exit_reason == "main-returned", result.console
    assert "app: library /rom/fota/__init__.mpy" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


# A clean compressed update of NEW: 270 flash operations (image sectors, otadata, the record's
# littlefs commits). The sweep cuts at a seeded sample of them, at 60 in `make reliability`.
CLEAN_OPS = 270
CUTS = sorted(random.Random(14).sample(range(1, CLEAN_OPS + 1), 60 if full() else 3))


def test_clean_compressed_update_fits_the_sweep(rig, server):
    r = rig()
    job = publish(r, server.url("/fw/fw.z"))
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert result.erases + result.writes == CLEAN_OPS, result.console


@pytest.mark.row("power cuts during a compressed update")
@pytest.mark.parametrize("cut", CUTS)
def test_power_cut_in_a_compressed_update(rig, server, cut):
    r = rig()
    job = publish(r, server.url("/fw/fw.z"))
    with_cut = r.run(max_boots=8, cut_at=cut, timeout=120)
    assert with_cut.flash_stats.get("cuts") == 1, with_cut.console
    assert with_cut.exit_reason == "main-returned", with_cut.console
    version = check_consistent(r, job, with_cut)
    if version == "1.0.1":
        assert r.running_slot_bytes()[:len(NEW)] == NEW


# --- the plan of a compressed document (fotaplan, in MicroPython) -------------------------------

DOC = {"operation": "fota", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 1500000,
       "bc_url": "https://localhost/fw.deflate", "bc_enc": "deflate", "bc_wbits": 12,
       "bc_zsize": 1000000}


def plan_of(doc: dict) -> object:
    import json

    from tests.device.mpy import run_json

    return run_json(f"""
import json
from fota.plan import plan, DocError
try:
    p = plan(json.loads({json.dumps(json.dumps(doc))}), 2, 0, 1, 0x180000)
    print(json.dumps([p.codec, p.args, p.xsize, p.size]))
except DocError as e:
    print(json.dumps(str(e)))
""")


def test_plan_of_a_compressed_document():
    assert plan_of(DOC) == ["deflate", {"wbits": 12}, 1000000, 1500000]
    plain = {k: v for k, v in DOC.items() if not k.startswith("bc_enc")}
    assert plan_of(plain) == [None, None, 1500000, 1500000]  # bc_wbits, bc_zsize unused


@pytest.mark.parametrize("change,reason", [
    ({"bc_wbits": 13}, "bc_wbits 13: this device inflates windows of 2**9..2**12 bytes"),
    ({"bc_wbits": "12"}, "bc_wbits must be an integer"),
    ({"bc_wbits": None}, "bc_wbits missing"),
    ({"bc_zsize": 0}, "bc_zsize 0 does not fit"),
    ({"bc_zsize": 0x180001}, "bc_zsize 1572865 does not fit"),
    ({"bc_zsize": True}, "bc_zsize must be an integer"),
    ({"bc_enc": 1}, "bc_enc 1 is not supported"),
    ({"bc_enc": "gzip"}, "bc_enc gzip is not supported"),
])
def test_bad_compressed_field_is_refused(change, reason):
    doc = {k: v for k, v in {**DOC, **change}.items() if v is not None}
    assert plan_of(doc).startswith(reason)


def test_signed_compressed_image(rig, server):
    # bc_sig signs the image, not the compressed file: the device checks it over what it wrote.
    from tests.device.test_signed import sig, signed_rig

    r = signed_rig(rig)
    job = publish(r, server.url("/fw/fw.z"), bc_sig=sig(NEW))
    result = r.run()
    assert "signature ok" in result.console, result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


def test_bomb_under_main_then_a_good_compressed_update(rig, server, tmp_path):
    # The project's own main.py: a decompression bomb ends FAILED while the loop goes on, and
    # the next (good) compressed job is taken by the same running board.
    from fotatools.backend import TERMINAL_STATES
    from tests.reliability.board import MAIN, Running

    r = rig(app=MAIN)
    running = r.running_slot_bytes()
    bomb = list(BAD).index("bomb in a piece")
    bad = publish(r, server.url(f"/fw/bad{bomb}.z"), bc_zsize=len(BAD["bomb in a piece"][0]))
    with Running(r, tmp_path / "ops.log") as board:
        assert board.until(lambda: r.execution(bad).status in TERMINAL_STATES, timeout=120)
        assert board.dev.running  # the loop is alive
        assert r.running_slot_bytes() == running
        good = publish(r, server.url("/fw/fw.z"))
        board.until(lambda: r.execution(good).status in TERMINAL_STATES, timeout=120)
        board.stop()
    ex = r.execution(bad)
    assert ex.status == "FAILED" and "piece 1 inflates past its 65536 bytes" in ex.status_details["reason"]
    assert r.execution(good).status == "SUCCEEDED", r.execution(good)
    assert r.version() == "1.0.1"


def test_inflater_opens_at_every_sector(tmp_path):
    # lib/inflate.py alone in MicroPython, the compressed file on disk as its transport: from
    # every sector of the image, with the piece's place recorded (after a power cut) or not
    # (from piece 0, dropping what comes before), the next sector is the image's.
    import json

    from tests.device.mpy import run_json

    (tmp_path / "fw.z").write_bytes(PACKED)
    sectors = range(0, len(NEW), 4096)
    out = run_json(f"""
import json, hashlib, binascii, os
from fota.inflate import Inflater
class File:
    def __init__(self, start):
        self.f = open("fw.z", "rb"); self.f.seek(start); self.total = os.stat("fw.z")[6]
    def readinto(self, b):
        return self.f.readinto(b)
    def close(self):
        self.f.close()
size, xsize = {len(NEW)}, {len(PACKED)}
offsets = {json.dumps(OFFSETS)}
buf = bytearray(4096)
out = []
for start in {json.dumps(list(sectors))}:
    for state in (None, [start // 65536, offsets[start // 65536]]):
        r = Inflater(File, size, xsize, 12, state).open(start)
        n = 0
        while n < min(4096, size - start):
            n += r.readinto(memoryview(buf)[n:min(4096, size - start)])
        r.close()
        out.append(binascii.hexlify(hashlib.md5(buf[:n]).digest()).decode())
print(json.dumps(out))
""", cwd=tmp_path, timeout=300)
    want = [hashlib.md5(NEW[s:s + 4096]).hexdigest() for s in sectors for _ in (0, 1)]
    assert out == want


# --- the inflater's buffer (lib/fota/inflate.py alone, in MicroPython) ------------------------

INFLATE_FILE = """
import json, os, io, deflate, hashlib, binascii
from fota import inflate
class File:
    def __init__(self, start):
        self.f = open("fw.z", "rb"); self.f.seek(start); self.total = os.stat("fw.z")[6]
    def readinto(self, b):
        return self.f.readinto(b)
    def close(self):
        self.f.close()
sources = []
class Spy:  # deflate, noting the type of each source DeflateIO is given
    ZLIB = deflate.ZLIB
    def DeflateIO(src, *args):
        sources.append(type(src).__name__)
        return deflate.DeflateIO(src, *args)
inflate.deflate = Spy
r = inflate.Inflater(File, SIZE, os.stat("fw.z")[6], 12).open(0)
buf = bytearray(4096)
got = hashlib.sha256()
error = None
try:
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got.update(buf[:n])
except inflate.InflateError as e:
    error = str(e)
print(json.dumps([binascii.hexlify(got.digest()).decode(), sorted(set(sources)), error]))
"""


def inflate_alone(tmp_path, packed: bytes, size: int) -> tuple[str, list[str], str | None]:
    """The Inflater on `packed`: the SHA-256 of what it gave, the types of DeflateIO's
    sources, and its InflateError (None if it made the image)."""
    from tests.device.mpy import run_json

    (tmp_path / "fw.z").write_bytes(packed)
    got, sources, error = run_json(f"SIZE = {size}\n" + INFLATE_FILE, cwd=tmp_path, timeout=300)
    return got, sources, error


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_inflater_reads_a_native_stream(tmp_path):
    # DeflateIO reads its source a byte at a time: from an io.BytesIO in C, from a Python
    # stream one call per byte (6x the time of the inflating).
    got, sources, error = inflate_alone(tmp_path, PACKED, len(NEW))
    assert error is None and got == sha(NEW)
    assert sources == ["BytesIO"]


def padded_piece(data: bytes, empties: int) -> bytes:
    """A zlib stream (window 2**12) of data that starts with `empties` empty stored blocks of
    5 bytes each: valid deflate, whose first bytes of output come after 5 * empties bytes."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -12)
    body = b"\x00\x00\x00\xff\xff" * empties + raw.compress(data) + raw.flush()
    return bytes((0x48, 0x0D)) + body + zlib.adler32(data).to_bytes(4, "big")


@pytest.mark.parametrize("empties,ok", [(810, True), (819, False)])
def test_inflater_never_runs_past_its_buffer(tmp_path, empties, ok):
    # The inflater is asked for 1024 image bytes at a time with the file's next 4096 bytes in
    # its buffer: a piece whose first 1024 bytes take 4050 and some (810 empty blocks) is
    # inflated; one whose first 1024 take 4095 and more (819) fails with its reason, never
    # with bytes from past the buffer.
    data = b"ab" + bytes(4094)  # its first 1024 bytes: a few bytes of deflate
    packed = padded_piece(data, empties)
    assert zlib.decompress(packed) == data
    got, _, error = inflate_alone(tmp_path, packed, len(data))
    if ok:
        assert error is None and got == sha(data)
    else:
        assert error == "piece 0 takes more than 4096 compressed bytes for 1024 image bytes"
        assert got == sha(b"")


def test_file_cut_anywhere_ends_in_its_piece(tmp_path):
    # The compressed file cut short at every 37th byte (a server whose file is short of what
    # the document says, bc_zsize matching it): each cut is reported where it is, never as
    # bad data or a bomb made of bytes from past the cut (the buffer keeps older ones there).
    import json

    from tests.device.mpy import run_json

    (tmp_path / "fw.z").write_bytes(PACKED)
    cuts = list(range(1, len(PACKED), 37))
    why = run_json(f"""
import json
from fota import inflate
class Cut:
    def __init__(self, start):
        self.f = open("fw.z", "rb"); self.f.seek(start); self.total = cut; self.left = cut - start
    def readinto(self, b):
        n = self.f.readinto(memoryview(b)[:min(len(b), self.left)])
        self.left -= n
        return n
    def close(self):
        self.f.close()
buf = bytearray(4096)
out = []
for cut in {json.dumps(cuts)}:
    r = inflate.Inflater(Cut, {len(NEW)}, cut, 12).open(0)
    try:
        while r.readinto(buf):
            pass
        out.append("made the image")
    except inflate.InflateError as e:
        out.append(str(e))
    r.close()
print(json.dumps(out))
""", cwd=tmp_path, heapsize="1m", timeout=300)
    want = ["compressed file ends in piece %d" % max(k for k, o in enumerate(OFFSETS) if o <= c)
            for c in cuts]
    assert why == want


def test_host_checks_pieces_against_the_device_inflater():
    # fota build's check of every span (fotatools.release.inflate_pieces) and the device's
    # inflater agree on the piece, the span and the bytes held for it.
    from fotatools import release
    from tests.device.mpy import run_json

    device = run_json("import json\nfrom fota import inflate\n"
                      "print(json.dumps([inflate.PIECE, inflate.STEP, inflate.LOW]))")
    assert device == [release.PIECE, release.INFLATE_STEP, release.INFLATE_LOW]
