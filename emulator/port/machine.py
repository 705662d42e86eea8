"""machine module of the emulated ESP32 (shadows the unix port's small built-in machine).

reset() and a watchdog timeout end the process at once (SIGKILL after recording the cause),
so neither `except Exception` nor a bare `except:` can swallow them; the runner boots the
board again and reset_cause() reports HARD_RESET or WDT_RESET, PWRON_RESET after a power
cut, DEEPSLEEP_RESET after deepsleep(). soft_reset() is sys.exit(), as on the board: the
runner re-runs boot.py and main.py without a bootloader pass, and reset_cause() is
SOFT_RESET. See _esp32emu for the environment variables.
"""

import time

import _esp32emu as _emu

try:
    import umachine as _builtin  # the unix port's own machine module
except ImportError:
    _builtin = None

PWRON_RESET = _emu.PWRON_RESET
HARD_RESET = _emu.HARD_RESET
WDT_RESET = _emu.WDT_RESET
DEEPSLEEP_RESET = _emu.DEEPSLEEP_RESET
SOFT_RESET = _emu.SOFT_RESET

SLEEP = 2
DEEPSLEEP = 4
PIN_WAKE = 2
EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6

_freq = [160000000]

if _builtin is not None:
    for _name in ("mem8", "mem16", "mem32", "time_pulse_us", "PinBase", "Signal"):
        if hasattr(_builtin, _name):
            globals()[_name] = getattr(_builtin, _name)


def reset():
    """esp_restart(): the board reboots through the bootloader. Never returns."""
    _emu.die("hard")


def soft_reset():
    raise SystemExit


def reset_cause():
    return _emu.RESET_CAUSE


def wake_reason():
    return 4 if _emu.RESET_CAUSE == DEEPSLEEP_RESET else 0


def unique_id():
    return _emu.UNIQUE_ID


def freq(hz=None):
    if hz is None:
        return _freq[0]
    mhz = hz // 1000000
    if mhz not in (20, 40, 80, 160, 240):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq[0] = mhz * 1000000


def idle():
    time.sleep_ms(1)


def lightsleep(time_ms=None):
    if time_ms is None:
        while True:
            time.sleep_ms(1000)
            _emu.wdt_check()
    time.sleep_ms(time_ms)


sleep = lightsleep


def deepsleep(time_ms=None):
    """The board powers down and boots again after time_ms (DEEPSLEEP_RESET). Without a
    time (or 0) nothing wakes it up here, so the run ends."""
    _emu.die("deepsleep %d" % (int(time_ms) if time_ms else 0))


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


class WDT:
    """The task watchdog (machine_wdt.c): id must be 0; once started it cannot be stopped
    and survives a soft reset. If it is not fed within timeout ms the board resets with
    WDT_RESET. The emulator counts wall-clock time plus the modelled flash busy time."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        _emu.wdt_start(timeout)

    def feed(self):
        _emu.wdt_check()
        _emu.wdt_feed()


def _set_clock(dt, hour):
    # machine_rtc_datetime_helper: an 8-item tuple, weekday ignored; settimeofday
    items = tuple(dt)
    if len(items) != 8:
        raise ValueError("requested length 8 but object has length %d" % len(items))
    secs = _emu.civil_seconds(items[0], items[1], items[2], items[hour], items[hour + 1],
                              items[hour + 2])
    _emu.clock_set(secs + items[7] / 1000000)


# the ESP32's GPIO numbers
_GPIOS = tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40))


class Pin:
    """A GPIO that remembers its level (no hardware behind it): enough for firmware that
    drives a status LED or reads a button that is never pressed (pulled-up inputs read 1)."""

    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2
    _levels = {}

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        if not isinstance(id, int) or id not in _GPIOS:
            raise ValueError("invalid pin")
        self._id = id
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        if mode == Pin.OUT and self._id >= 34:
            raise ValueError("pin can only be input")
        if pull != -1:
            self._pull = pull
        if value is not None:
            Pin._levels[self._id] = 1 if value else 0
        elif self._id not in Pin._levels:
            Pin._levels[self._id] = 1 if pull == Pin.PULL_UP else 0

    def value(self, v=None):
        if v is None:
            return Pin._levels.get(self._id, 0)
        Pin._levels[self._id] = 1 if v else 0

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3):
        return None

    def __repr__(self):
        return "Pin(%d)" % self._id


class RTC:
    """The board's clock and the RTC memory (machine_rtc.c). The clock starts at
    2000-01-01 00:00:00 at power-up and keeps running over every other reset (the runner
    sets it); datetime(...) and init(...) set it for time, machine.RTC and TLS alike. The
    RTC memory survives every reset but a power cut."""

    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is not None:
            _set_clock(dt, 4)
            return None
        t = time.time()
        s = int(t)
        tm = time.gmtime(s)
        return (tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], int((t - s) * 1000000))

    def init(self, dt):
        _set_clock(dt, 3)  # machine_rtc_init: hour at index 3, microseconds at 7

    def memory(self, data=None):
        if data is None:
            return _emu.rtc_memory()
        if len(data) > 2048:
            raise ValueError("buffer too long")
        _emu.rtc_memory(data)
