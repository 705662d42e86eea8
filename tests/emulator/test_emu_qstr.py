"""The emulation's own names do not decide what the firmware's names cost its heap.

MicroPython indexes the names it interns at run time in pools it allocates from the heap,
each twice the size of the one before (py/qstr.c, qstr_add: 20, 40, ... 640, 1280 entries).
The emulated built-in modules are Python and intern several hundred names before the firmware
starts; the launcher then fills the pool in use until a new one is allocated outside the
firmware's heap (emulator/mpqstr.py), so the firmware's names start in a pool of their own
wherever the emulation's names ended."""

from __future__ import annotations

import re

import pytest

from tests.emulator.emuhelpers import EMIT, records, run_micropython

# A pool of n entries starts after 20 + 40 + ... + n/2 = n - 20 names.
FIRST_POOL = 20


def pool_state(out: str) -> tuple[int, int]:
    """(entries of the last pool, names in it) from micropython.qstr_info()'s line."""
    m = re.search(r"qstr pool: n_pool=(\d+), n_qstr=(\d+)", out)
    assert m, out
    pools, names = int(m.group(1)), int(m.group(2))
    size = FIRST_POOL << (pools - 1)
    return size, names - (size - FIRST_POOL)


@pytest.mark.parametrize("own", [0, 150, 400, 700, 1250])
def test_the_firmware_starts_in_a_fresh_pool_whatever_the_emulations_names(tmp_path, own):
    # `own`: names the emulation interned before (more or fewer emulated modules)
    out = run_micropython(f"""
import micropython, mpqstr
class H:
    pass
h = H()
for i in range({own}):
    setattr(h, "_emu%d" % i, None)
h = None
pads = mpqstr.fresh_pool()
micropython.qstr_info()
""", tmp_path)
    size, used = pool_state(out)
    assert used == 1  # the placeholder that made MicroPython allocate it
    assert size >= 320  # mpqstr.POOL_MIN: a smaller pool is passed over


NAMES = EMIT + """
import gc
class H:
    pass
h = H()
h.x = 1
names = ["_fw%d" % i for i in range({n})]
gc.collect()
before = gc.mem_free()
for n in names:
    setattr(h, n, None)
    delattr(h, n)
gc.collect()
emit(before - gc.mem_free())
"""


def test_the_firmwares_names_cost_only_their_characters(board):
    # 1000 names, more than the library interns in a job of three files (about 600): their
    # characters (3 to 5 and a nul, in 128-byte chunks), no pool. Without the fresh pool the
    # emulation's 700 names left room for 560 and the next pool (1280 entries, 14 KB) came
    # out of the firmware's heap.
    cost, = records(board.run(NAMES.format(n=1000), heapsize="300k"))
    assert cost <= 1000 * 8


def test_a_firmware_with_more_names_than_the_pool_holds_pays_for_the_next(board):
    # The measure above sees a pool: past the fresh pool's 1280 entries the next one (2560
    # entries) is allocated from the firmware's heap.
    cost, = records(board.run(NAMES.format(n=1400), heapsize="300k"))
    assert cost > 1400 * 8 + 2560 * 8
