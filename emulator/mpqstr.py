"""The qstr pool the firmware starts with, for the launcher (mpboot.py); MicroPython only.

The names the firmware interns at run time (qstrs: the identifiers and attribute names of
its .py and .mpy files) are indexed by pools that MicroPython allocates from the heap, each
twice the size of the one before (py/qstr.c, qstr_add: 20, 40, 80, ... 640, 1280 entries of
a pointer, a hash and a length). On a board the built-in modules are C, their names are in
flash, and the firmware's own names are the first in those pools. Here the emulated
built-in modules are Python and have already interned several hundred names, so how many
they are decides where a pool runs out: a few dozen more of them made a job's names
overflow a 640-entry pool, and the next one (1280 entries, 14 KB on the 64-bit unix port)
came out of the firmware's heap in the middle of the job.

fresh_pool() ends that: it interns placeholder names until MicroPython allocates a new pool,
so that the pool comes out of the emulation's room, before the firmware's heap is set aside,
and the firmware starts with a pool of its own, empty but for one placeholder, whatever the
number of the emulation's names.
"""

import gc

# the smallest new pool looked for: 320 entries of at least 7 bytes (on a 32-bit build);
# interning one name otherwise takes at most a 128-byte chunk for its characters
# (MICROPY_ALLOC_QSTR_CHUNK_INIT)
POOL_MIN = 320 * 7
MAX_NAMES = 4096


class _Holder:
    pass


def fresh_pool():
    """Intern placeholder names until a new qstr pool is allocated. -> the names, which the
    caller keeps: freed, they would leave holes among the interned characters."""
    names = []
    holder = _Holder()
    gc.disable()  # a collection during a name could hide the pool's allocation
    try:
        while len(names) < MAX_NAMES:
            name = "_qpad%d" % len(names)
            names.append(name)
            before = gc.mem_alloc()
            setattr(holder, name, None)  # an attribute name is interned
            grown = gc.mem_alloc() - before
            delattr(holder, name)
            if grown >= POOL_MIN:
                return names
    finally:
        gc.enable()
    raise RuntimeError("no new qstr pool after %d names" % MAX_NAMES)
