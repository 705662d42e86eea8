"""NOR flash in a file: erase, program, read, with op counting, a timing model and power cuts.

Runs under CPython (the bootloader, tools) and MicroPython (the emulated board's esp32
module), so it uses only what both offer.

Rules, as on a real SPI NOR part:
- erase works on 4 KB sectors (or 64 KB blocks when a range covers an aligned block) and
  sets every byte to 0xFF;
- programming can only clear bits: the stored byte becomes old & new. A write over
  unerased flash therefore stores corrupted data. With strict=True such a write raises
  FlashStrictError instead, to catch a missing erase in tests.

Every erase command and every write call is one "operation". The counters live in a
small binary file in the state folder, so they add up over all the boots of a run, and
the runner reports them. A power cut at operation N (cut_at) performs operation N only
partly (the first half of its bytes, a deterministic prefix) and then calls on_cut(),
which the caller makes kill the process (board) or raise (bootloader).

Timing model (typical datasheet figures; nothing sleeps): 4 KB sector erase 45 ms, 64 KB
block erase 200 ms, 0.75 ms per 256-byte page programmed, reads at 10 MB/s.

A read, a write of up to a sector over erased flash, and a sector erase allocate nothing on
MicroPython's heap (after the first use of each size): littlefs calls the block device from
a file's finaliser while the garbage collector has the heap locked, as when the firmware
drops an open file or soft-resets, and on a board those calls are C.
"""

import struct

SECTOR = 0x1000
BLOCK = 0x10000
_ERASED = b"\xff" * SECTOR
PAGE = 0x100
SECTOR_ERASE_US = 45000
BLOCK_ERASE_US = 200000
PAGE_PROGRAM_US = 750
READ_US_PER_KB = 100

# ops, sector_erases, block_erases, writes, bytes_written, pages, reads, bytes_read,
# time_us, cut_done, strict_violations
STATS_FMT = "<11Q"
STATS_FIELDS = ("ops", "sector_erases", "block_erases", "writes", "bytes_written",
                "pages_programmed", "reads", "bytes_read", "time_us", "cuts",
                "unerased_writes")
STATS_FILE = "flash_stats.bin"


class FlashStrictError(OSError):
    pass


class PowerCut(Exception):
    """Raised (CPython side) when the configured power cut happens."""


def read_stats(path):
    """The counters in a stats file as a dict (zeros if the file is missing)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        raw = b""
    size = struct.calcsize(STATS_FMT)
    if len(raw) < size:
        values = [0] * len(STATS_FIELDS)
    else:
        values = struct.unpack(STATS_FMT, raw[:size])
    return dict(zip(STATS_FIELDS, values))


class NorFlash:
    def __init__(self, path, stats_path=None, cut_at=0, strict=False, on_cut=None, stuck_at=-1,
                 oplog=None, short_at=-1):
        self.path = path
        # oplog: a file path; every erase and write appends "E|W <addr hex> <len hex>\n" to it
        self.oplog = open(oplog, "a") if oplog else None
        self.stuck_at = stuck_at  # a byte whose lowest bit no erase sets again (worn cell)
        # an address no program reaches: a write over it stores the bytes before it only, and
        # reports success (a program that stopped short, silently)
        self.short_at = short_at
        self.f = open(path, "r+b")
        self.f.seek(0, 2)
        self.size = self.f.tell()
        self.strict = strict
        self.cut_at = cut_at or 0
        self.on_cut = on_cut
        self.stats_file = None
        self.s = [0] * len(STATS_FIELDS)
        self.busy_us = 0  # modelled busy time of this process (for the watchdog model)
        self._scratch = bytearray(SECTOR)  # what a write lands on
        self._views = {}  # size -> (view of _scratch, view of that many 0xFF bytes of _ERASED)
        self._packed = bytearray(8 * len(STATS_FIELDS))
        if stats_path:
            try:
                self.stats_file = open(stats_path, "r+b")
            except OSError:
                self.stats_file = open(stats_path, "w+b")
            raw = self.stats_file.read()
            size = struct.calcsize(STATS_FMT)
            if len(raw) >= size:
                self.s = list(struct.unpack(STATS_FMT, raw[:size]))

    def close(self):
        self.f.close()
        if self.oplog:
            self.oplog.close()
        if self.stats_file:
            self.stats_file.close()

    def stats(self):
        return dict(zip(STATS_FIELDS, self.s))

    def _save(self):
        if self.stats_file:
            packed, values = self._packed, self.s
            for i in range(len(values)):  # STATS_FMT, without allocating
                v = values[i]
                for j in range(8):
                    packed[8 * i + j] = (v >> (8 * j)) & 0xFF
            self.stats_file.seek(0)
            self.stats_file.write(packed)
            self.stats_file.flush()

    def _check(self, addr, size):
        if addr < 0 or size < 0 or addr + size > self.size:
            raise ValueError("flash access 0x%x+0x%x beyond the chip (0x%x)" % (addr, size, self.size))

    # ---- raw access
    def read(self, addr, size):
        self._check(addr, size)
        self.f.seek(addr)
        data = self.f.read(size)
        self.s[6] += 1
        self.s[7] += size
        t = size * READ_US_PER_KB // 1024
        self.s[8] += t
        self.busy_us += t
        return data

    def readinto(self, addr, buf):
        size = len(buf)
        self._check(addr, size)
        self.f.seek(addr)
        self.f.readinto(buf)
        self.s[6] += 1
        self.s[7] += size
        t = size * READ_US_PER_KB // 1024
        self.s[8] += t
        self.busy_us += t

    def _begin_op(self):
        """Count one operation; True if the power is cut during it."""
        self.s[0] += 1
        return self.cut_at and self.s[0] == self.cut_at

    def _cut(self):
        self.s[9] += 1
        self._save()
        self.f.flush()
        if self.on_cut:
            self.on_cut()
        raise PowerCut("power cut at flash operation %d" % self.s[0])

    def _log(self, kind, addr, size):
        if self.oplog:
            self.oplog.write("%s %x %x\n" % (kind, addr, size))
            self.oplog.flush()

    def _erase_one(self, addr, length, us, field):
        self._log("E", addr, length)
        cut = self._begin_op()
        self.s[field] += 1
        self.s[8] += us
        self.busy_us += us
        n = length // 2 if cut else length
        self.f.seek(addr)
        while n > 0:  # from one erased sector kept around: the firmware's heap pays nothing
            k = min(n, SECTOR)
            self.f.write(_ERASED if k == SECTOR else memoryview(_ERASED)[:k])
            n -= k
        if addr <= self.stuck_at < addr + length:
            self.f.seek(self.stuck_at)
            self.f.write(b"\xfe")
        if cut:
            self._cut()
        self._save()

    def erase_range(self, addr, size):
        """Erase [addr, addr+size): both must be sector aligned (ESP_ERR_INVALID_ARG /
        _SIZE otherwise, raised here as ValueError)."""
        if addr % SECTOR or size % SECTOR:
            raise ValueError("erase range 0x%x+0x%x not sector aligned" % (addr, size))
        self._check(addr, size)
        end = addr + size
        while addr < end:
            if addr % BLOCK == 0 and end - addr >= BLOCK:
                self._erase_one(addr, BLOCK, BLOCK_ERASE_US, 2)
                addr += BLOCK
            else:
                self._erase_one(addr, SECTOR, SECTOR_ERASE_US, 1)
                addr += SECTOR

    def write(self, addr, data):
        """Program data at addr: each stored byte becomes old & new."""
        size = len(data)
        self._check(addr, size)
        if size == 0:
            return
        self.f.seek(addr)
        # Over erased flash (the usual case) the data is stored as it is; elsewhere each byte
        # becomes old & new. Checked without copies: this code shares the firmware's heap.
        if size <= SECTOR:
            pair = self._views.get(size)
            if pair is None:
                # views, not copies: a board's flash driver takes nothing of the firmware's heap
                pair = self._views[size] = (memoryview(self._scratch)[:size], memoryview(_ERASED)[:size])
            old = pair[0]
            self.f.readinto(old)
            unerased = old != pair[1]
        else:
            old = self.f.read(size)
            unerased = old.count(b"\xff") != size
        if unerased:
            bi = int.from_bytes(bytes(data), "little")
            result = int.from_bytes(old, "little") & bi
            unerased = result != bi
        if unerased and self.strict:
            raise FlashStrictError(5, "write to unerased flash at 0x%x (strict mode)" % addr)
        self._log("W", addr, size)
        cut = self._begin_op()
        pages = (addr + size - 1) // PAGE - addr // PAGE + 1
        self.s[3] += 1
        self.s[4] += size
        self.s[5] += pages
        us = pages * PAGE_PROGRAM_US
        self.s[8] += us
        self.busy_us += us
        if unerased:
            self.s[10] += 1
        out = result.to_bytes(size, "little") if unerased else data
        n = size // 2 if cut else size
        if addr <= self.short_at < addr + n:
            n = self.short_at - addr
        self.f.seek(addr)
        self.f.write(memoryview(out)[:n] if n < size else out)
        if cut:
            self._cut()
        self._save()

    def flush(self):
        self.f.flush()
