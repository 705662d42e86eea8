"""lib/fota/delta.py, Patch._next: the lower bound of the base position when a size field too
long for the kernels (5 bytes or more) moves it, both sides, with the viper kernel and the
plain one."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases
from tests.device.test_delta_entries import MAX_IMAGE, header, long_size, made, on_device
from tests.device.test_delta import size


@pytest.mark.parametrize("to,ok", cases([
    ("inside-minus-max-5-bytes", -MAX_IMAGE, True), ("outside-minus-max-1-5-bytes", -MAX_IMAGE - 1, False)]))
def test_delta_base_position_moved_down_by_a_long_field(to, ok):
    # Patch._next keeps the position plus MAX_IMAGE, never negative: -MAX_IMAGE is 0 there,
    # the lowest it may be; an entry moving there, then one moving back that makes one byte
    patch = (header(1) + size(0) + size(0) + long_size(to, 5)
             + size(0) + size(1) + b"Z" + long_size(-to, 5))
    got = on_device(patch, 100)
    if ok:
        assert got == [made(b"Z")] * 2
    else:
        assert got == [f"DeltaError: patch moves to byte {to} of the 100-byte base image"] * 2
