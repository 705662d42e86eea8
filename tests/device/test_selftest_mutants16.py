"""lib/fota/selftest.py, memory(): the heap is collected before the check takes its pieces,
so that garbage left by the start-up does not fail a trial boot. An application may run with
automatic collection off (gc.disable()): MicroPython's allocator then never collects on its
own when the heap is full (py/gc.c, gc_alloc starts with `collected` set when automatic
collection is disabled), and only the check's own gc.collect() frees that garbage."""

from __future__ import annotations

from tests.device.test_bounds import mp


def test_the_memory_check_collects_first_even_with_automatic_collection_off():
    got = mp("""
import gc
from fota import selftest
gc.collect()
gc.disable()
full = 0
try:
    while True:  # garbage until the heap is full: each piece is dropped at once
        bytearray(1024)
        full += 1
except MemoryError:
    pass
why = selftest.memory()
gc.enable()
out([full > 30000 // 1024, why])
""", heapsize="128k")
    assert got == [True, None]
