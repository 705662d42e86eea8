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

_freq = [_emu.cpu_clock() * 1000000]

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
    """The CPU clock in Hz (ports/esp32/modmachine.c, for the ESP32): 160 MHz at boot (ESP-IDF's
    default), kept over a soft reset; set to 20, 40, 80, 160 or 240 MHz, any other value is
    ValueError with the port's message. Every change is recorded for the runner
    (RunResult.cpu_clock)."""
    if hz is None:
        return _freq[0]
    if not isinstance(hz, int):
        raise TypeError("can't convert %s to int" % type(hz).__name__)  # mp_obj_get_int
    mhz = hz // 1000000
    if mhz not in (20, 40, 80, 160, 240):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq[0] = mhz * 1000000
    _emu.cpu_clock(mhz)


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


# ---- UART

# default pins (ports/esp32/machine_uart.h for the ESP32): UART0 is the REPL
_UART_PINS = {0: (1, 3), 1: (10, 9), 2: (17, 16)}
_UART_NUM = 3
_uart_ports = {}  # id -> the open endpoint and what has been read from it


def _uart_wires():
    """id -> (host folder, name) of the pseudo-terminal $ESP32_UART<id> names. The folder is
    taken now, at import, while host paths still resolve (the launcher then mounts the
    board's filesystem at /); the port is opened through it when the UART is set up."""
    import os

    wires = {}
    for uart_id in (1, 2):
        path = os.getenv("ESP32_UART%d" % uart_id)
        if path:
            folder, name = path.rsplit("/", 1)
            wires[uart_id] = (os.VfsPosix(folder or "/"), "/" + name)
    return wires


_UART_WIRES = _uart_wires()


def _pin_id(pin):
    if pin is None or isinstance(pin, int):
        return pin
    return int(str(pin)[4:-1])  # Pin(n)


# Linux termios speed codes (bits/termios-baud.h)
_TERMIOS_SPEEDS = {1200: 0o11, 2400: 0o13, 4800: 0o14, 9600: 0o15, 19200: 0o16, 38400: 0o17,
                   57600: 0o10001, 115200: 0o10002, 230400: 0o10003, 460800: 0o10004,
                   500000: 0o10005, 576000: 0o10006, 921600: 0o10007, 1000000: 0o10010,
                   1152000: 0o10011, 1500000: 0o10012, 2000000: 0o10013}


class _UartPort:
    """One UART's wire: the pseudo-terminal named by $ESP32_UART<id> (the secondary MCU's
    serial port; see emulator/secondary), or nothing (bytes written are lost, reads time
    out), and the driver's receive buffer: `rxbuf` bytes allocated once, as
    uart_driver_install does (on a board outside MicroPython's heap), holding what was
    received and not read yet (buf[head:tail]). Bytes beyond it wait in the pseudo-terminal."""

    def __init__(self, uart_id, rxbuf):
        self.file = None
        self.poller = None
        self.buf = bytearray(max(rxbuf, 1))
        self.mv = memoryview(self.buf)
        self.head = self.tail = 0
        wire = _UART_WIRES.get(uart_id)
        if wire:
            import select
            import termios

            self.file = wire[0].open(wire[1], "r+b")
            fd = self.file.fileno()
            termios.setraw(fd)
            attrs = termios.tcgetattr(fd)
            attrs[6][5] = 0  # VTIME
            attrs[6][6] = 0  # VMIN: a read returns what is there, at once
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            self.poller = select.poll()
            self.poller.register(fd, select.POLLIN)
            while self.pull():  # a UART starts empty: what came before it was set up is lost
                self.head = self.tail = 0

    def configure(self, baudrate):
        """Put the line speed on the pseudo-terminal, where the device at the other end sees
        it: a device at another speed receives garbage, as on a real wire. (Linux ptys refuse
        parity and force 8 bits, so the frame format is not carried.)"""
        if self.file is None:
            return
        import termios

        fd = self.file.fileno()
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = _TERMIOS_SPEEDS.get(baudrate, 1)  # not in the table: B50
        termios.tcsetattr(fd, termios.TCSANOW, attrs)

    def held(self):
        return self.tail - self.head

    def pull(self):
        """Move what has arrived into the buffer while there is room; True if any came."""
        if self.file is None:
            return False
        if self.tail == len(self.buf) and self.head:
            n = self.held()
            self.mv[0:n] = self.mv[self.head:self.tail]
            self.head, self.tail = 0, n
        if self.tail == len(self.buf):
            return False
        n = self.file.readinto(self.mv[self.tail:]) or 0
        self.tail += n
        return n > 0

    def take(self, dst, size):
        """Copy up to size held bytes into the memoryview dst; the count."""
        n = min(size, self.held())
        dst[0:n] = self.mv[self.head:self.head + n]
        self.head += n
        if self.head == self.tail:
            self.head = self.tail = 0
        return n

    def wait(self, ms):
        """Wait up to ms for bytes to arrive; True if some are there."""
        if self.file is None:
            if ms > 0:
                time.sleep_ms(ms)
            return False
        return bool(self.poller.poll(ms))

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


_UNSET = object()


class UART:
    """machine.UART as ports/esp32/machine_uart.c has it: UART(id, baudrate, bits, parity,
    stop, *, tx, rx, rts, cts, txbuf, rxbuf, timeout, timeout_char, invert, flow); ids 0-2
    (0 is the REPL); read/readinto wait up to `timeout` ms for the first byte and
    `timeout_char` ms for the rest, and return None when nothing came; write returns the
    count; any(); flush(); txdone(); sendbreak(); init(); deinit(). The wire is a
    pseudo-terminal (ESP32_UART<id> names it); the line's speed is not modelled. No irq()."""

    # ESP-IDF's uart_signal_inv_t, uart_hw_flowcontrol_t and 1 << uart_event_type_t
    INV_TX = 0x20
    INV_RX = 0x4
    INV_RTS = 0x40
    INV_CTS = 0x8
    RTS = 1
    CTS = 2
    IRQ_RX = 1
    IRQ_RXIDLE = 0x1000
    IRQ_BREAK = 2
    _settings = {}  # id -> settings: one UART object per id on the board

    def __init__(self, id, *args, **kw):
        if not isinstance(id, int) or not 0 <= id < _UART_NUM:
            raise ValueError("UART(%s) does not exist" % id)
        self._id = id
        self.init(*args, **kw)

    def init(self, baudrate=0, bits=0, parity=_UNSET, stop=0, *, tx=None, rx=None, rts=None,
             cts=None, txbuf=-1, rxbuf=-1, timeout=-1, timeout_char=-1, invert=-1, flow=-1):
        s = UART._settings.get(self._id)
        fresh = s is None or self._id not in _uart_ports
        if fresh:
            # freshly initialised: the driver's defaults (mp_machine_uart_init_helper)
            tx0, rx0 = _UART_PINS[self._id]
            s = {"baudrate": 115200, "bits": 8, "parity": None, "stop": 1, "tx": tx0, "rx": rx0,
                 "rts": -1, "cts": -1, "txbuf": 256, "rxbuf": 256, "timeout": 0,
                 "timeout_char": 0, "invert": 0, "flow": 0}
            UART._settings[self._id] = s
        resize = (txbuf >= 0 and txbuf != s["txbuf"]) or (rxbuf >= 0 and rxbuf != s["rxbuf"])
        if resize and self._id == 0:
            raise ValueError("REPL UART buffer size is fixed")
        if txbuf >= 0:
            s["txbuf"] = txbuf
        if rxbuf >= 0:
            s["rxbuf"] = rxbuf
        if fresh or resize:  # the driver is (re)installed with its buffers: what it held is lost
            old = _uart_ports.pop(self._id, None)
            if old is not None:
                old.close()
            # uart_driver_install: both buffers larger than the 128-byte FIFO (tx may be 0)
            if s["rxbuf"] <= 128 or 0 < s["txbuf"] <= 128:
                raise OSError(1, "ESP_FAIL")
            _uart_ports[self._id] = _UartPort(self._id, s["rxbuf"])
        if baudrate > 0:
            s["baudrate"] = baudrate
        for name, pin in (("tx", tx), ("rx", rx), ("rts", rts), ("cts", cts)):
            if pin is not None:
                s[name] = _pin_id(pin)
        if bits:
            if bits not in (5, 6, 7, 8):
                raise ValueError("invalid data bits")
            s["bits"] = bits
        if parity is not _UNSET:  # None: no parity; 0 even, 1 odd (the lowest bit counts)
            s["parity"] = None if parity is None else parity & 1
        if stop:
            if stop not in (1, 2):
                raise ValueError("invalid stop bits")
            s["stop"] = stop
        if timeout != -1:
            s["timeout"] = timeout
        if timeout_char != -1:
            s["timeout_char"] = timeout_char
        if invert != -1:
            if invert & ~(UART.INV_TX | UART.INV_RX | UART.INV_RTS | UART.INV_CTS):
                raise ValueError("invalid inversion mask")
            s["invert"] = invert
        if flow != -1:
            if flow & ~(UART.RTS | UART.CTS):
                raise ValueError("invalid flow control mask")
            s["flow"] = flow
        _uart_ports[self._id].configure(s["baudrate"])

    def deinit(self):
        port = _uart_ports.pop(self._id, None)
        if port is not None:
            port.close()

    def _port(self):
        """The wire, or None after deinit(): the ESP-IDF driver is deleted, so
        uart_read_bytes / uart_write_bytes return -1 (read and write give None) and
        uart_get_buffered_data_len / uart_wait_tx_done return ESP_FAIL."""
        return _uart_ports.get(self._id)

    def any(self):
        port = self._port()
        if port is None:
            raise OSError(1, "ESP_FAIL")
        port.pull()
        return port.held()

    def _settings_of(self, name):
        return UART._settings[self._id][name]

    def _read_into(self, dst, size):
        """mp_machine_uart_read: wait up to timeout for a first byte, then up to
        timeout_char for the rest of `size`; None (EAGAIN) if nothing came."""
        port = self._port()
        if port is None:
            return None
        port.pull()
        if not port.held():
            if not port.wait(self._settings_of("timeout")):
                return None
            port.pull()
            if not port.held():
                return None
        got = port.take(dst, size)
        deadline = time.ticks_add(time.ticks_ms(), self._settings_of("timeout_char"))
        while got < size:
            port.pull()
            if port.held():
                got += port.take(dst[got:], size - got)
                continue
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0 or not port.wait(left):
                break
        return got

    def _read1(self, size):
        if size <= 0:
            return b""
        buf = bytearray(size)
        n = self._read_into(memoryview(buf), size)
        if n is None:
            return None
        return bytes(buf) if n == size else bytes(buf[:n])

    def read(self, nbytes=None):
        if nbytes is not None:
            return self._read1(nbytes)
        out = b""
        while True:  # mp_stream_readall: until a read finds nothing
            chunk = self._read1(256)
            if chunk is None:
                return out if out else None
            out += chunk

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        if n <= 0:
            return 0
        return self._read_into(memoryview(buf), n)

    def readline(self):
        out = b""
        while True:
            c = self._read1(1)
            if c is None:
                return out if out else None
            out += c
            if c == b"\n":
                return out

    def write(self, buf):
        port = self._port()
        if port is None:
            return None
        if isinstance(buf, str):
            buf = buf.encode()
        if self._id == 0:
            import sys

            sys.stdout.write(bytes(buf).decode("utf-8", "replace"))
            return len(buf)
        if port.file is None:
            return len(buf)  # nothing on the wire
        data = memoryview(buf)
        done = 0
        while done < len(data):
            n = port.file.write(data[done:])
            done += n or 0
        return done

    def flush(self):
        # the pseudo-terminal takes every byte at once: nothing is left to send
        if self._port() is None:
            raise OSError(110)  # ETIMEDOUT: uart_wait_tx_done failed

    def txdone(self):
        return self._port() is not None

    def sendbreak(self):
        if self._port() is None:
            raise OSError(1, "ESP_FAIL")

    def __repr__(self):
        s = UART._settings[self._id]
        return ("UART(%d, baudrate=%d, bits=%d, parity=%s, stop=%d, tx=%d, rx=%d, rts=%d, cts=%d, "
                "txbuf=%d, rxbuf=%d, timeout=%d, timeout_char=%d, irq=0)"
                % (self._id, s["baudrate"], s["bits"], s["parity"], s["stop"], s["tx"], s["rx"],
                   s["rts"], s["cts"], s["txbuf"], s["rxbuf"], s["timeout"], s["timeout_char"]))
