"""The base position's bounds in the delta kernels (lib/fota/deltaplain.py and deltaviper.py,
entries): an adjustment that moves the position to either end of its range (-MAX_IMAGE or
+MAX_IMAGE) is taken by the kernel itself; only one past an end goes to Patch._next (the
slow path, for a size field cut by the end of the data or longer than 4 bytes), which
refuses it."""

from __future__ import annotations

import binascii

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_delta_entries import MAX_IMAGE, RUN, header, long_size, made, size

COUNT = """
calls = [0]
slow = delta.Patch._next
def counted(self):
    calls[0] += 1
    return slow(self)
delta.Patch._next = counted
res = []
for plain in (False, True):
    calls[0] = 0
    try:
        got = apply(PATCH, 100, plain)
    except Exception as e:
        got = "%s: %s" % (type(e).__name__, e)
    res.append([got, calls[0]])
out(res)
"""


@pytest.mark.parametrize("to,ok", cases([
    ("inside-minus-max", -MAX_IMAGE, True), ("outside-minus-max-1", -MAX_IMAGE - 1, False),
    ("inside-max", MAX_IMAGE, True), ("outside-max+1", MAX_IMAGE + 1, False)]))
def test_the_kernels_take_the_ends_of_the_base_position_themselves(to, ok):
    # an entry moving the base position to `to` (a 4-byte field: the kernels read it), then
    # one that moves it back and makes the image's one byte
    patch = (header(1) + size(0) + size(0) + long_size(to, 4)
             + size(0) + size(1) + b"Z" + long_size(-to, 4))
    got = mp(RUN + COUNT.replace("PATCH", f"binascii.unhexlify({binascii.hexlify(patch).decode()!r})"))
    if ok:
        assert got == [[made(b"Z"), 0]] * 2
    else:
        assert got == [[f"DeltaError: patch moves to byte {to} of the 100-byte base image", 1]] * 2
