"""Shared core of the emulated esp32 and machine modules (MicroPython).

Configuration comes from the runner through environment variables:

    ESP32_FLASH         path of the flash file (required)
    ESP32_STATE         folder for state shared with the runner: flash counters, reset
                        record, watchdog feeds, RTC memory, CPU clock changes (required)
    ESP32_RUNNING       offset of the partition the bootloader started (e.g. 0x10000)
    ESP32_RESET_CAUSE   machine.reset_cause() value for this boot (1..5)
    ESP32_CUT_AT        cut the power during this flash operation (counted over the run)
    ESP32_STRICT        "1": writing over unerased flash raises OSError instead of ANDing
    ESP32_STUCK_AT      a flash address whose byte has a worn-out cell: its lowest bit stays 0
                        after an erase (a fault for the firmware's read-back checks)
    ESP32_SHORT_AT      a flash address no program reaches: a write over it stores only the
                        bytes before it and reports success (a program that stopped short)
    ESP32_WDT_GRACE_MS  slack added to machine.WDT timeouts (host slowness)
    ESP32_WDT_MODEL     "0": ignore the modelled flash busy time in the watchdog
    ESP32_UNIQUE_ID     12 hex digits: machine.unique_id() (the Wi-Fi MAC)
    ESP32_OPLOG         a file: every flash erase and write is appended to it as
                        "E|W <address hex> <length hex>" (for checks of what was touched)
    ESP32_TICKS_MS      time.ticks_ms() as this boot starts (read by _boardtime.py, the
                        board's 30-bit ticks)

The board's clock is this process's own clock, moved by libfaketime (preloaded by the runner):
ESP32_STATE/clock holds its offset from the host clock in seconds ("+N" / "-N"), which the
runner writes at each power-up and clock_set() rewrites (machine.RTC().datetime(...)).

A reset kills this process at once (so no except clause can swallow it) after writing the
cause to ESP32_STATE/reset; the runner starts the next boot.
"""

import json
import os
import time

import flashfmt as ff
import norflash

ESP_FAIL = -1
ESP_ERR_INVALID_ARG = 0x102
ESP_ERR_INVALID_SIZE = 0x104
ESP_ERR_NOT_FOUND = 0x105
ESP_ERR_NOT_SUPPORTED = 0x106
ESP_ERR_OTA_VALIDATE_FAILED = 0x1503
ESP_ERR_NAMES = {
    ESP_FAIL: "ESP_FAIL",
    ESP_ERR_INVALID_ARG: "ESP_ERR_INVALID_ARG",
    ESP_ERR_INVALID_SIZE: "ESP_ERR_INVALID_SIZE",
    ESP_ERR_NOT_FOUND: "ESP_ERR_NOT_FOUND",
    ESP_ERR_NOT_SUPPORTED: "ESP_ERR_NOT_SUPPORTED",
    ESP_ERR_OTA_VALIDATE_FAILED: "ESP_ERR_OTA_VALIDATE_FAILED",
}

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def esp_error(code):
    """OSError as MicroPython's check_esp_err raises it: (-code, name); a few codes map to
    POSIX errno values."""
    if code == ESP_ERR_NOT_SUPPORTED:
        return OSError(95, ESP_ERR_NAMES[code])
    return OSError(-code, ESP_ERR_NAMES.get(code, "ESP_ERR_0x%x" % code))


def _env(name, default=None):
    value = os.getenv(name)
    return default if value is None or value == "" else value


def _int(text, default=0):
    if text is None:
        return default
    text = str(text).strip()
    return int(text, 16) if text.startswith("0x") or text.startswith("0X") else int(text)


FLASH_PATH = _env("ESP32_FLASH")
STATE = _env("ESP32_STATE")
if not FLASH_PATH or not STATE:
    raise ImportError("esp32 emulation needs ESP32_FLASH and ESP32_STATE")
RESET_CAUSE = _int(_env("ESP32_RESET_CAUSE"), PWRON_RESET)
WDT_GRACE_MS = _int(_env("ESP32_WDT_GRACE_MS"), 0)
WDT_MODEL = _env("ESP32_WDT_MODEL", "1") != "0"


class _Chip:
    # The board's chip: the facts emulator/chips.py board_facts() gives, which the runner
    # hands over in ESP32_CHIP_FACTS (importing chips.py here would compile it in the board's
    # heap); run without the runner, chips.py's for the chip ESP32_CHIP names.
    def __init__(self, facts):
        for k in facts:
            setattr(self, k, facts[k])

    def machine(self, fota):
        # sys.implementation._machine (and os.uname().machine): "<board> with <mcu>"
        return (self.fota_board if fota else self.board) + " with " + self.mcu


if _env("ESP32_CHIP_FACTS"):
    CHIP = _Chip(json.loads(_env("ESP32_CHIP_FACTS")))
else:
    import chips
    CHIP = _Chip(chips.board_facts(_env("ESP32_CHIP", "esp32")))
UNIQUE_ID = bytes(int(_env("ESP32_UNIQUE_ID", "a4cf12000001")[i:i + 2], 16) for i in range(0, 12, 2))



def _open_rw(path):
    """Open (creating) a state file for update. Every host file is opened here, at import:
    the launcher then mounts the device filesystem at / and host paths stop resolving."""
    try:
        return open(path, "r+b")
    except OSError:
        return open(path, "w+b")


_reset_file = open(STATE + "/reset", "w")
_wdt_file = _open_rw(STATE + "/wdt")
_rtc_file = _open_rw(STATE + "/rtc_memory")
_clock_file = _open_rw(STATE + "/clock")
_cpu_file = _open_rw(STATE + "/cpu")
_boot_ms = time.ticks_ms()


def rtc_memory(data=None):
    """RTC slow memory (kept by the runner over every reset but a power cut)."""
    f = _rtc_file
    if data is None:
        f.seek(0)
        head = f.read(2)
        if len(head) < 2:
            return b""
        return f.read(head[0] | head[1] << 8)
    f.seek(0)
    f.write(bytes((len(data) & 0xFF, len(data) >> 8)) + bytes(data))
    f.flush()


DEFAULT_MHZ = 160  # ESP32_GENERIC's clock at boot (ESP-IDF's CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ)


def cpu_clock(mhz=None):
    """The CPU clock in MHz. Set: appended to ESP32_STATE/cpu as "<MHz> <flash operations so
    far in the run>" (the runner's RunResult.cpu_clock). Read: the last one set if this boot is
    a soft reset (ports/esp32/main.c leaves the power management as it was), else the clock
    every other reset starts at."""
    f = _cpu_file
    if mhz is not None:
        f.seek(0, 2)
        f.write(("%d %d\n" % (mhz, flash.stats()["ops"])).encode())
        f.flush()
        return mhz
    if RESET_CAUSE != SOFT_RESET:
        return DEFAULT_MHZ
    f.seek(0)
    lines = f.read().split()
    return int(lines[-2]) if lines else DEFAULT_MHZ


def civil_seconds(year, month, day, hour, minute, second):
    """Seconds since 1970-01-01 00:00:00 UTC of a date and time (proleptic Gregorian), as
    timeutils_seconds_since_1970 computes them, whatever the host's time zone."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def clock_set(unix_seconds):
    """Set the board's clock (settimeofday on a board): rewrite the offset that libfaketime
    reads at every time call, so time, machine.RTC and mbedTLS see the new time at once."""
    f = _clock_file
    f.seek(0)
    try:
        old = float(f.read().decode().strip() or "0")
    except ValueError:
        old = 0.0
    f.seek(0)
    f.write(("%+018.6f\n" % (old + unix_seconds - time.time())).encode())
    f.flush()


def die(cause, message=None):
    """Record why the board resets and stop this process now (SIGKILL)."""
    if message:
        print(message)
    _reset_file.seek(0)
    _reset_file.write(cause + "\n")
    _reset_file.flush()
    try:
        flash._save()
        flash.flush()
    except Exception:
        pass
    os.system("kill -9 $PPID")
    while True:  # never reached: the shell killed us
        pass


def _power_cut():
    die("power")


flash = norflash.NorFlash(FLASH_PATH, STATE + "/" + norflash.STATS_FILE,
                          _int(_env("ESP32_CUT_AT"), 0), _env("ESP32_STRICT") == "1",
                          _power_cut, _int(_env("ESP32_STUCK_AT"), -1), _env("ESP32_OPLOG"),
                          _int(_env("ESP32_SHORT_AT"), -1))
partitions = ff.with_runtime_vfs(
    ff.parse_partition_table(flash.read(ff.PARTITION_TABLE_OFFSET, ff.PARTITION_TABLE_MAX_LEN)),
    flash.size)
_running_offset = _int(_env("ESP32_RUNNING"), -1)


def find(ptype, subtype, label):
    """esp_partition_find: partitions in table order."""
    out = []
    for p in partitions:
        if ptype != 0xFF and p.type != ptype:
            continue
        if subtype != 0xFF and p.subtype != subtype:
            continue
        if label is not None and p.label != label:
            continue
        out.append(p)
    return out


def find_first(ptype, subtype, label=None):
    found = find(ptype, subtype, label)
    return found[0] if found else None


def ota_slots():
    """OTA app partitions by slot number (esp_ota_get_app_partition_count order)."""
    slots = []
    while find_first(ff.TYPE_APP, ff.SUBTYPE_OTA_0 + len(slots)) is not None:
        slots.append(find_first(ff.TYPE_APP, ff.SUBTYPE_OTA_0 + len(slots)))
    return slots


def running_partition():
    for p in partitions:
        if p.type == ff.TYPE_APP and p.offset <= _running_offset < p.offset + p.size:
            return p
    # ESP-IDF aborts when the running code is outside every app partition
    die("hard", "abort() was called: running partition not found")


def otadata_partition():
    return find_first(ff.TYPE_DATA, ff.SUBTYPE_DATA_OTA)


def read_otadata():
    part = otadata_partition()
    if part is None:
        return None, None
    return part, [ff.OtaEntry.unpack(flash.read(part.offset + i * ff.SECTOR_SIZE,
                                                ff.OTA_SELECT_SIZE)) for i in (0, 1)]


def rewrite_ota_seq(part, entries, seq, sec):
    """rewrite_ota_seq (esp_ota_ops.c): erase the entry's sector, write the entry."""
    e = entries[sec]
    e.seq = seq
    e.crc = ff.ota_seq_crc(seq)
    flash_erase(part.offset + sec * ff.SECTOR_SIZE, ff.SECTOR_SIZE)
    flash_write(part.offset + sec * ff.SECTOR_SIZE, e.pack())


def default_boot_partition():
    p = find_first(ff.TYPE_APP, ff.SUBTYPE_FACTORY)
    if p is not None:
        return p
    for sub in range(ff.SUBTYPE_OTA_0, ff.SUBTYPE_OTA_MAX):
        p = find_first(ff.TYPE_APP, sub)
        if p is not None:
            return p
    return find_first(ff.TYPE_APP, ff.SUBTYPE_TEST)


def boot_partition():
    """esp_ota_get_boot_partition."""
    part, entries = read_otadata()
    if part is None:
        return None
    slots = ota_slots()
    if (entries[0].invalid() and entries[1].invalid()) or not slots:
        return default_boot_partition()
    active = ff.active_otadata(entries)
    if active == -1:
        return default_boot_partition()
    return slots[entries[active].slot(len(slots))]


# ---------------------------------------------------------------- guarded flash access
def _region_safe(addr, size):
    """esp_partition_main_flash_region_safe: not the bootloader/partition table, not the
    running app."""
    if addr <= ff.PARTITION_TABLE_OFFSET + ff.PARTITION_TABLE_MAX_LEN:
        return False
    p = running_partition()
    if p.offset <= addr < p.offset + p.size:
        return False
    if addr < p.offset and addr + size > p.offset:
        return False
    return True


def _guard(addr, size):
    if not _region_safe(addr, size):
        die("hard", "E (%d) spi_flash: write/erase at 0x%x (0x%x bytes) touches the running "
            "app or the bootloader\nabort() was called at PC 0x400d3a1e on core 0\n\n"
            "Rebooting..." % (time.ticks_diff(time.ticks_ms(), _boot_ms), addr, size))


def flash_erase(addr, size):
    _guard(addr, size)
    flash.erase_range(addr, size)
    romfs_refresh(addr, size)
    wdt_check()


def flash_write(addr, data):
    _guard(addr, len(data))
    try:
        flash.write(addr, data)
    except norflash.FlashStrictError as e:
        raise OSError(5, e.args[1])  # EIO, as a plain OSError for the firmware
    romfs_refresh(addr, len(data))
    wdt_check()


# ---------------------------------------------------------------- the memory-mapped ROMFS
# The board maps the "romfs" partition into the address space (esp_partition_mmap, on the
# first vfs.rom_ioctl(2, ...), which mp_init makes at boot); reads go through the flash
# cache, which ESP-IDF invalidates after each write or erase. Here the map is a copy in RAM
# (esp32._RomSegment), made before the firmware's heap is set aside, and kept equal to the
# flash after every erase and write of the partition. Reading it is not a counted flash read.
romfs_part = find_first(ff.TYPE_DATA, 0xFF, ff.ROMFS_LABEL)
romfs_map = []  # [the segment] once mapped


def romfs_load(buf):
    flash.f.seek(romfs_part.offset)
    flash.f.readinto(buf)


def romfs_refresh(addr, size):
    if not romfs_map:
        return
    p = romfs_part
    lo = addr if addr > p.offset else p.offset
    hi = addr + size
    if hi > p.offset + p.size:
        hi = p.offset + p.size
    if lo < hi:
        flash.f.seek(lo)
        flash.f.readinto(memoryview(romfs_map[0])[lo - p.offset:hi - p.offset])


# ---------------------------------------------------------------- watchdog
_wdt = {"timeout": 0, "fed_ms": 0, "busy0": 0, "count": 0, "written_ms": 0}


def wdt_start(timeout_ms):
    _wdt["timeout"] = timeout_ms
    wdt_feed(True)


def wdt_feed(force=False):
    now = time.ticks_ms()
    _wdt["fed_ms"] = now
    _wdt["busy0"] = flash.busy_us
    _wdt["count"] += 1
    # tell the runner (which enforces the timeout on wall-clock time), at most a few times
    # per timeout period
    if force or time.ticks_diff(now, _wdt["written_ms"]) >= _wdt["timeout"] // 8:
        _wdt["written_ms"] = now
        _wdt_file.seek(0)
        _wdt_file.write(("%10d %10d\n" % (_wdt["timeout"], _wdt["count"])).encode())
        _wdt_file.flush()


def wdt_check():
    """The task watchdog as a real board would see it: time since the last feed, with the
    modelled flash busy time added (erasing 1.5 MB takes seconds on a real chip)."""
    t = _wdt["timeout"]
    if not t:
        return
    # the grace only excuses host wall-clock slowness, not modelled flash time
    elapsed = max(0, time.ticks_diff(time.ticks_ms(), _wdt["fed_ms"]) - WDT_GRACE_MS)
    if WDT_MODEL:
        elapsed += (flash.busy_us - _wdt["busy0"]) // 1000
    if elapsed > t:
        die("wdt", "E (%d) task_wdt: Task watchdog got triggered. The following tasks/users "
            "did not reset the watchdog in time:\nE (%d) task_wdt:  - mpy_machine_wdt (CPU 0)"
            % (elapsed, elapsed))


def _wdt_resume():
    """A soft reset does not stop the task watchdog: pick it up again if it was running."""
    try:
        _wdt_file.seek(0)
        timeout = int(_wdt_file.read().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if timeout > 0:
        wdt_start(timeout)


_wdt_resume()
