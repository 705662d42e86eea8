"""lib/fota/selftest.py, memory(): the heap it took for its check is free again when it returns
(its own collection frees the pieces), so the application, and on a board the system RAM a
grown heap gives back (Wi-Fi, TLS), have it without waiting for the next collection."""

from __future__ import annotations

from tests.device.test_bounds import mp


def test_the_memory_check_frees_its_pieces_before_it_returns():
    got = mp("""
import gc
from fota import selftest
gc.collect()
before = gc.mem_free()
why = selftest.memory()
after = gc.mem_free()  # no collection in between: what memory() left
out([why, selftest.MIN_FREE, before - after])
""")
    why, min_free, kept = got
    assert why is None and min_free == 30000
    # the check took 8 pieces of 4096 bytes; a piece or so may stay until the next collection
    # (a stale pointer to the last one in the finished frame's stack, which the collector
    # scans conservatively), never the whole check
    assert kept < 3 * 4096
