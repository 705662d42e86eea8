"""lib/fota/heatshrink.py, Decoder: its window takes 2**window_sz2 bytes of heap, no more (the
largest, 15 bits, is 32 KB of the ~100 KB an ESP32 has free)."""

from __future__ import annotations

import pytest

from tests.device.mpy import run_json


@pytest.mark.parametrize("bits", [4, 15])
def test_the_window_takes_its_size_of_heap(bits):
    got = run_json(f"""
import gc, json
from fota import heatshrink, deltaplain
gc.collect()
before = gc.mem_alloc()
d = heatshrink.Decoder(None, {bits}, 3, deltaplain)
gc.collect()
print(json.dumps([len(d.win), gc.mem_alloc() - before]))
""")
    size, used = got
    assert size == 1 << bits
    assert (1 << bits) <= used < (1 << bits) + 512
