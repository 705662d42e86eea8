"""romimage.py in MicroPython: ROMFS images read front to back (what each one is made of, or
why it is refused), and .mpy headers against the running VM."""

from __future__ import annotations

import json

import pytest
from mpremote.romfs import VfsRomWriter

from tests.device import appimage
from tests.device.mpy import run_json

WALK = """
import json
from fota import romimage
data = open("img", "rb").read()
f = open("img", "rb")
rd = romimage.Reader(f.readinto, bytearray(64))
out = []
try:
    for kind, path, n in romimage.walk(rd, len(data) + EXTRA):
        if kind == romimage.FILE:
            b = bytearray(n)
            rd.exact(b)
            out.append([path, bytes(b).decode()])
        else:
            out.append([path + "/"])
except romimage.ImageError as e:
    out.append(str(e))
print(json.dumps(out))
"""


def walk(tmp_path, image: bytes, extra: int = 0):
    (tmp_path / "img").write_bytes(image)
    return run_json(WALK.replace("EXTRA", str(extra)), cwd=tmp_path)


def uint(v: int) -> bytes:
    return VfsRomWriter()._encode_uint(v)


def record(kind: int, payload: bytes) -> bytes:
    return uint(kind) + uint(len(payload)) + payload


def romfs(body: bytes) -> bytes:
    return b"\xd2\xcd\x31" + uint(len(body)) + body


def file(name: bytes, *records: bytes) -> bytes:
    return record(5, uint(len(name)) + name + b"".join(records))


def test_folders_files_and_padding_in_image_order(tmp_path):
    image = appimage.build({"a.txt": "one", "sub/b.txt": "two", "sub/deeper/c.txt": ""},
                           compile_py=False)
    assert walk(tmp_path, image) == [["a.txt", "one"], ["sub/"], ["sub/b.txt", "two"],
                                     ["sub/deeper/"], ["sub/deeper/c.txt", ""]]
    padded = romfs(record(1, b"comment") + file(b"x", record(1, b"pad"), record(2, b"data"),
                                                record(9, b"meta")) + record(42, b"??"))
    assert walk(tmp_path, padded) == [["x", "data"]]


@pytest.mark.parametrize("image, extra, why", [
    (b"\xe9" + bytes(30), 0, "not a ROMFS image"),
    (romfs(file(b"x", record(2, b"data"))), 5, "ROMFS image of 14 bytes, the document says 19"),
    (romfs(file(b"x", record(2, b"data")))[:-2], 2, "image ends early"),
    (romfs(file(b"x", record(3, uint(4) + uint(0)))), 0, "x: data pointer records are not supported"),
    (romfs(file(b"x", record(1, b"pad"))), 0, "x has no data"),
    (romfs(file(b"a/b", record(2, b"d"))), 0, "bad name b'a/b'"),
    (romfs(file(b"..", record(2, b"d"))), 0, "bad name b'..'"),
    (romfs(record(0, b"")), 0, "corrupt record"),
    (romfs(uint(4) + uint(50) + b"\x01d"), 0, "runs past its folder"),
])
def test_damaged_image_is_refused(tmp_path, image, extra, why):
    out = walk(tmp_path, image, extra)
    assert why in out[-1], out


MPY = """
import json
from fota import romimage
out = []
for head in HEADS:
    try:
        romimage.check_mpy("m.mpy", bytes(head))
        out.append("ok")
    except romimage.ImageError as e:
        out.append(str(e))
print(json.dumps(out))
"""


def test_mpy_headers_against_the_running_vm():
    # the unix port's VM: bytecode 6, x64 (arch 2), sub-version 3
    heads = [[77, 6, 0, 31], [77, 6, 2 << 2 | 3, 63], [77, 5, 0, 31], [77, 6, 10 << 2 | 3, 31],
             [77, 6, 2 << 2 | 2, 63], [67, 6, 0, 31], [77, 6]]
    out = run_json(MPY.replace("HEADS", json.dumps(heads)))
    assert out == ["ok", "ok", "m.mpy: bytecode version 5, this firmware runs 6",
                   "m.mpy: native code for xtensawin.3, this firmware runs x64.3",
                   "m.mpy: native code for x64.2, this firmware runs x64.3",
                   "m.mpy is not a .mpy file", "m.mpy is not a .mpy file"]


@pytest.mark.parametrize("extra, want", [
    (0, [["empty/"], ["x", "d"]]),  # the name ends where its folder record ends: an empty folder
    (1, "bad name length 6 at byte"),  # one byte past it
], ids=["inside-at-the-end", "outside-1-past"])
def test_a_name_may_end_where_its_record_ends(tmp_path, extra, want):
    name = b"empty"
    folder = uint(4) + uint(1 + len(name)) + uint(len(name) + extra) + name
    out = walk(tmp_path, romfs(folder + file(b"x", record(2, b"d"))))
    if isinstance(want, str):
        assert want in out[-1], out
    else:
        assert out == want
