"""The entries of a delta patch as the kernels take them apart (lib/fota/deltaviper.py and
deltaplain.py, entries; lib/fota/delta.py, Patch): size fields cut by the end of a buffer of
patch data or longer than the kernels read, parts that run past the image, and the limits of
an image's length and of the base position (MAX_IMAGE), each with the viper kernel and the
plain-bytecode one."""

from __future__ import annotations

import hashlib
import io

import detools
import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_delta import size

MAX_IMAGE = 1 << 24

RUN = """
from fota import delta, deltaplain
class Base:
    def __init__(self, n):
        self.b = bytearray((i * 7 + 3) & 0xFF for i in range(n))
    def ioctl(self, op, arg):
        return 4096
    def readblocks(self, block, buf, off=0):
        at = block * 4096 + off
        buf[:] = self.b[at:at + len(buf)]
def apply(patch, base_len, plain):
    delta.kern = deltaplain if plain else (delta.fast or deltaplain)
    p = delta.Patch(io.BytesIO(patch), Base(base_len), base_len)
    buf = bytearray(700)
    mv = memoryview(buf)
    h = hashlib.sha256()
    n = 0
    while True:
        k = p.readinto(mv[:(n % 5) * 97 + 1])  # every kind of room left
        if not k:
            return [n, binascii.hexlify(h.digest()).decode()]
        h.update(mv[:k])
        n += k
def both(patch, base_len):
    # -> [viper, plain]: what each makes, or the error
    out = []
    for plain in (False, True):
        try:
            out.append(apply(patch, base_len, plain))
        except Exception as e:
            out.append("%s: %s" % (type(e).__name__, e))
    return out
import hashlib
print(json.dumps(delta.fast is not None))
"""


def base(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def on_device(patch: bytes, base_len: int) -> list:
    out = mp(RUN + f"out(both(binascii.unhexlify({patch.hex()!r}), {base_len}))", )
    return out


def long_size(v: int, nbytes: int) -> bytes:
    """A size field of at least `nbytes` bytes (more than it needs: detools reads it the same)."""
    out = bytearray(size(v))
    while len(out) < nbytes:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


def made(data: bytes) -> list:
    return [len(data), hashlib.sha256(data).hexdigest()]


def detools_apply(old: bytes, patch: bytes) -> bytes:
    out = io.BytesIO()
    detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), out)
    return out.getvalue()


def header(total: int) -> bytes:
    return b"\x00" + size(total) + size(0)  # no compression, no data format


def test_the_plain_kernel_is_not_the_viper_one_here():
    assert mp(RUN + "") is True  # the emulator's MicroPython has the viper emitter


def entries_patch(old: bytes, pad: int) -> tuple[bytes, bytes, int]:
    """A patch of entries of every shape, their size fields 1 to 6 bytes long, after a first
    entry of `pad` extra bytes; -> (patch, the image it makes, how many of its size fields
    run across the 1 KB pieces the patch is read in)."""
    body, new, frm, fields = bytearray(size(0) + size(pad) + b"p" * pad + size(0)), bytearray(b"p" * pad), 0, []

    def field(v: int, w: int) -> None:
        f = long_size(v, w)
        fields.append((len(body), len(f)))
        body.extend(f)

    for i in range(300):
        nd, ne = (i * 37) % 23, (i * 11) % 19
        adj = max(((i * 13) % 41) - 20, -(frm + nd)) if frm + nd + 60 < len(old) else -frm // 2
        diff = bytes((i + j) & 0xFF for j in range(nd))
        w = 1 + (i + pad) % 6
        field(nd, w)
        body += diff
        field(ne, w)
        body += bytes([65 + i % 26]) * ne
        field(adj, w)
        new += bytes((old[frm + j] + diff[j]) & 0xFF for j in range(nd)) + bytes([65 + i % 26]) * ne
        frm += nd + adj
    head = header(len(new))
    cut = sum(1 for at, n in fields if (len(head) + at) // 1024 != (len(head) + at + n - 1) // 1024)
    return head + bytes(body), bytes(new), cut


def test_size_fields_cut_by_the_buffer_and_of_every_length_make_the_image_detools_makes(tmp_path):
    # The kernels leave a size field cut by the end of the patch data they have (or longer
    # than 4 bytes) to Patch._next; the pieces move with the first entry's length.
    old = base(5000)
    patches = [entries_patch(old, pad) for pad in range(8)]
    assert sum(cut for _, _, cut in patches) >= 10
    for patch, new, _ in patches:
        assert detools_apply(old, patch) == new
    for i, (patch, _, _) in enumerate(patches):
        (tmp_path / f"p{i}").write_bytes(patch)
    got = mp(RUN + f"out([both(open('p%d' % i, 'rb').read(), 5000) for i in range({len(patches)})])",
             cwd=tmp_path)
    assert got == [[made(new)] * 2 for _, new, _ in patches]


@pytest.mark.parametrize("part,n,ok", cases([
    ("diff-inside-the-image", "diff", 0, True), ("diff-outside-image+1", "diff", 1, False),
    ("extra-inside-the-image", "extra", 0, True), ("extra-outside-image+1", "extra", 1, False),
    ("diff-outside-negative", "diff", -101, False)]))
def test_a_part_runs_past_the_image(part, n, ok):
    # 100 bytes in one part, or one byte more (a 2-byte field: the kernels take it)
    k = 100 + n
    entry = size(k) + bytes(max(k, 0)) + size(0) if part == "diff" else size(0) + size(k) + bytes(max(k, 0))
    got = on_device(header(100) + entry + size(0), 200)
    if ok:
        assert got[0] == got[1] and got[0][0] == 100
    else:
        assert got == [f"DeltaError: patch {part} data of {k} bytes runs past the 100 bytes the patch makes"] * 2


@pytest.mark.parametrize("value,width", [(2 ** 32 + 5, 5), (2 ** 31, 5), (2 ** 32 + 5, 6)])
def test_a_long_size_field_is_read_with_its_whole_value(value, width):
    # 5 bytes or more: Patch._next reads it, not the kernels (a 32-bit board could not)
    got = on_device(header(100) + long_size(value, width) + bytes(100), 200)
    assert got == [f"DeltaError: patch diff data of {value} bytes runs past the 100 bytes the patch makes"] * 2


@pytest.mark.parametrize("total,ok", cases([("inside-max", MAX_IMAGE, True), ("outside-max+1", MAX_IMAGE + 1, False)]))
def test_delta_image_length(total, ok):
    got = mp(RUN + f"out(error(delta.Patch, io.BytesIO(binascii.unhexlify({header(total).hex()!r})), Base(10), 10))")
    assert got == ("ok" if ok else f"DeltaError: patch makes {total} bytes, more than an image can have ({MAX_IMAGE})")


@pytest.mark.parametrize("to,width,ok", cases([
    ("inside-max", MAX_IMAGE, 4, True), ("outside-max+1", MAX_IMAGE + 1, 4, False),
    ("inside-minus-max", -MAX_IMAGE, 4, True), ("outside-minus-max-1", -MAX_IMAGE - 1, 4, False),
    ("inside-max-5-bytes", MAX_IMAGE, 5, True), ("outside-max+1-5-bytes", MAX_IMAGE + 1, 5, False)]))
def test_delta_base_position(to, width, ok):
    # an entry moving the base position to `to` (its field `width` bytes: 4 the kernels read,
    # 5 Patch._next), then one that moves it back and makes the image's one byte
    patch = (header(1) + size(0) + size(0) + long_size(to, width)
             + size(0) + size(1) + b"Z" + long_size(-to, width))
    got = on_device(patch, 100)
    if ok:
        assert got == [made(b"Z")] * 2
    else:
        assert got == [f"DeltaError: patch moves to byte {to} of the 100-byte base image"] * 2


@pytest.mark.parametrize("wb,lb", [(4, 3), (8, 7), (12, 11), (13, 12)])
def test_heatshrink_items_of_every_width_decode_as_detools_makes_them(wb, lb):
    # an item is 1 + wb + lb bits: read whole where they are in (up to 24), else a field at a
    # time (a window of 2**13 is past MAX_WINDOW: taken here with max_window=13)
    old = base(30000)
    new = bytearray(old)
    for i in range(0, len(new), 777):
        new[i:i + 5] = b"ABCDE"
    new = bytes(new[:20000] + bytes(3000) + new[20000:])
    out = io.BytesIO()
    detools.create_patch(io.BytesIO(old), io.BytesIO(new), out, compression="heatshrink",
                         heatshrink_window_sz2=wb, heatshrink_lookahead_sz2=lb)
    patch = out.getvalue()
    got = mp(RUN.replace("Base(base_len), base_len)", "Base(base_len), base_len, max_window=13)")
             + f"out(both(binascii.unhexlify({patch.hex()!r}), {len(old)}))")
    assert got == [made(new)] * 2
