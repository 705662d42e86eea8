"""lib/fota/delta.py, Patch._next: a part whose size field is longer than the kernels read (5
bytes: Patch._next reads it) may not run past the bytes of the image not yet made, however far
inside MAX_IMAGE its size is, with the viper kernel and the plain-bytecode one."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases
from tests.device.test_delta_entries import header, long_size, on_device


@pytest.mark.parametrize("part,n,ok", cases([
    ("diff-inside-the-image", "diff", 0, True), ("diff-outside-image+1", "diff", 1, False),
    ("extra-inside-the-image", "extra", 0, True), ("extra-outside-image+1", "extra", 1, False)]))
def test_a_part_with_a_long_size_field_runs_past_the_image(part, n, ok):
    # 100 bytes in one part, or one byte more, its size field 5 bytes long
    k = 100 + n
    field = long_size(k, 5)
    entry = field + bytes(k) + long_size(0, 5) if part == "diff" else long_size(0, 5) + field + bytes(k)
    got = on_device(header(100) + entry + long_size(0, 5), 200)
    if ok:
        assert got[0] == got[1] and got[0][0] == 100
    else:
        assert got == [f"DeltaError: patch {part} data of {k} bytes runs past the 100 bytes the patch makes"] * 2
