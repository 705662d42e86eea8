"""Which form of a release reaches a board first over a link of a given speed.

An update's time on an ESP32 is its flash work, the download and the CPU (`make bench`,
bench/cpu_bench.py, models it in full). The flash work is the same for every form (every
sector of the new image erased and written; a delta also reads the running image), so the
choice is between bytes on the air and CPU work:
- full: the image over TLS, written and checked by the slot writer;
- compressed: fewer bytes, and the inflating (MicroPython's deflate module, C) of every byte;
- delta: fewest bytes, and the patching: the viper loops over every byte of the image (the
  entries taken apart there too) and, for each entry of the patch, a read of the old image
  and a call of the loops from interpreted code.
The CPU figures are those of `make bench` for an ESP32 at 240 MHz (the clock the update runs
at, fota.core.cpu_fast), nominal; bench/cpu_bench.py prints them (`publish_model`) from the
run's own measurements: refresh them here when they move.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

SECTOR = 4096
SECTOR_ERASE_S = 0.045  # emulator/norflash.py: the datasheet timing model
PAGE_PROGRAM_S = 0.00075  # per 256-byte page
READ_S_PER_KB = 0.0001
TLS_RECORD, TLS_OVERHEAD = 16384, 29  # TLS 1.2 AES-GCM: plaintext per record, bytes added

# CPU on the board at 240 MHz, nominal (make bench, cpu_bench.py `publish_model`)
TLS_S_PER_BYTE = 0.72e-6  # mbedTLS and the HTTPS client, per byte on the air
WRITE_S_PER_BYTE = 0.33e-6  # the slot writer (compare, read back) and MD5, per image byte
INFLATE_S_PER_BYTE = 1.88e-6  # inflating, per image byte
DELTA_S_PER_BYTE = 0.95e-6  # the patch's viper loops (the entries taken apart too), per image byte
DELTA_S_PER_ENTRY = 85e-6  # the patch's interpreted work (a base read, a call), per entry

FORMS = ("full", "compressed", "delta")


class RateError(ValueError):
    pass


def parse_rate(text: str) -> int:
    """'250k', '1M', '2.5M', '10m', '1000000' (bits per second) -> bits per second."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:bit/s|bps|b/s)?\s*", text)
    if not m:
        raise RateError(f"bad link speed {text!r}: bits per second, e.g. 250k, 1M, 10M")
    rate = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]
    if not 1e3 <= rate <= 1e10:
        raise RateError(f"bad link speed {text!r}: 1k..10G bits per second")
    return int(rate)


def on_air(nbytes: int) -> int:
    """Bytes of a file sent over HTTPS in full TLS records."""
    return nbytes + math.ceil(nbytes / TLS_RECORD) * TLS_OVERHEAD


def flash_s(size: int, delta: bool = False) -> float:
    """Erase and program every sector of a `size`-byte image (and, for a delta, read as many
    bytes of the running image)."""
    sectors = -(-size // SECTOR)
    t = sectors * (SECTOR_ERASE_S + SECTOR // 256 * PAGE_PROGRAM_S)
    return t + (size / 1024 * READ_S_PER_KB if delta else 0.0)


@dataclass
class Estimate:
    form: str
    flash_s: float
    download_s: float
    cpu_s: float

    @property
    def total_s(self) -> float:
        return self.flash_s + self.download_s + self.cpu_s


def estimate(form: str, size: int, sent: int, rate_bps: int, entries: int = 0) -> Estimate:
    """The modelled board time of sending `sent` bytes (the image, compressed file or patch)
    that make a `size`-byte image; `entries`: the patch's entries (a delta)."""
    cpu = WRITE_S_PER_BYTE * size + TLS_S_PER_BYTE * on_air(sent)
    if form == "compressed":
        cpu += INFLATE_S_PER_BYTE * size
    elif form == "delta":
        cpu += DELTA_S_PER_BYTE * size + DELTA_S_PER_ENTRY * entries
    elif form != "full":
        raise ValueError(form)
    return Estimate(form, flash_s(size, form == "delta"), on_air(sent) * 8 / rate_bps, cpu)


def fastest(size: int, sizes: dict[str, int], rate_bps: int, entries: int = 0) -> list[Estimate]:
    """Every form in `sizes` ({form: bytes sent}; full is the image), fastest first (the
    image first on a tie: it needs least of the board)."""
    ests = [estimate(f, size, sizes[f], rate_bps, entries) for f in FORMS if f in sizes]
    return sorted(ests, key=lambda e: (round(e.total_s, 3), FORMS.index(e.form)))


def patch_entries(patch: bytes) -> int:
    """Entries of a detools sequential patch (diff, extra and adjustment each)."""
    from detools.apply import PatchReader, read_header_sequential
    from detools.common import unpack_size

    f = io.BytesIO(patch)
    compression, to_size = read_header_sequential(f)
    r = PatchReader(f, compression)
    unpack_size(r)  # data format: none
    made = n = 0
    while made < to_size:
        for _ in range(2):  # diff, then extra
            k = unpack_size(r)
            r.decompress(k)
            made += k
        unpack_size(r)  # adjustment
        n += 1
    return n
