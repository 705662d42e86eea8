# The board's clock, set before TLS checks certificate dates.
#
# An ESP32's clock reads 2000-01-01 after power-up (only a power-up resets the RTC timer) and
# mbedTLS refuses a certificate whose validity starts later ("The certificate validity
# starts in the future"). Two things set it here:
# - the floor: the running firmware's build time (the app descriptor's date and time, as
#   the compiler wrote __DATE__ and __TIME__). A clock earlier than that is wrong, so it is
#   set to the floor: a board that cannot reach NTP still accepts certificates issued before
#   its firmware was built;
# - SNTP (RFC 4330) at config.json's "ntp", "host" or "host:port" (default time.aws.com,
#   Amazon's public NTP service; "" turns NTP off). A reply is believed only if it is well
#   formed, answers our request and falls between a day before the floor (__TIME__ is the
#   build machine's local time, UTC-12 to UTC+14) and 20 years after it: no firmware runs that
#   long without an update, and a clock that far ahead would make every certificate expired.
# ready(ntp) does both and never raises; it is cheap once synced: call it before each TLS
# session. One NTP attempt per call (1 s timeout); while not synced the attempts back off
# 10 s, 20 s, 40 s ... 10 min; once synced the clock is asked again every 6 hours.

import gc
import socket
import struct
import time

DEFAULT = "time.aws.com"
PORT = 123
TIMEOUT_S = 1
FIRST_WAIT_MS = 10_000
MAX_WAIT_MS = 600_000
RESYNC_MS = 6 * 3600_000
SLACK = 86400  # the build machine's time zone
AHEAD = 7305 * 86400  # 20 years
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EPOCH = time.gmtime(0)[0]  # 2000 on the ESP32, 1970 on the unix port
NTP_DELTA = 3155673600 if EPOCH == 2000 else 2208988800  # 1900-01-01 to the epoch

synced = False
_due = None  # ticks_ms of the next NTP attempt; None: at the next call
_wait = FIRST_WAIT_MS
_floor = None


def now():
    return int(time.time())  # a float in the unix port


def stamp(t=None):
    try:
        tm = time.gmtime(now() if t is None else t)
    except (OverflowError, ValueError):  # a time the port cannot show (before its epoch)
        return "%d s from %d" % (t, EPOCH)
    return "%04d-%02d-%02d %02d:%02d:%02d UTC" % tm[:6]


def _days(y, mo, d):
    # Days from 0000-03-01 (proleptic Gregorian) to a date.
    y = y - 1 if mo <= 2 else y
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy


def seconds(y, mo, d, h=0, mi=0, s=0):
    # Seconds since the epoch of a UTC date and time (whatever the port's time zone).
    return (_days(y, mo, d) - _days(EPOCH, 1, 1)) * 86400 + h * 3600 + mi * 60 + s


def set_time(t, us=0):
    import machine

    tm = time.gmtime(t)
    machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], us))


def build_time(head):
    # Epoch seconds of the build date and time in the first 144 bytes of an app image
    # (esp_app_desc_t at offset 32: time at 112, date at 128); 0 if there are none.
    if len(head) < 144 or head[0] != 0xE9 or struct.unpack_from("<I", head, 32)[0] != 0xABCD5432:
        return 0
    d = bytes(head[128:144]).split(b"\0")[0].split()
    t = bytes(head[112:128]).split(b"\0")[0].split(b":")
    try:
        return seconds(int(d[2]), MONTHS.index(d[0].decode()) + 1, int(d[1]),
                       int(t[0]), int(t[1]), int(t[2]))
    except (ValueError, IndexError, UnicodeError):
        return 0


def floor():
    # The running firmware's build time (epoch seconds), 0 when it cannot be read.
    global _floor
    if _floor is None:
        _floor = 0
        try:
            from esp32 import Partition

            head = bytearray(144)
            Partition(Partition.RUNNING).readblocks(0, head)
            _floor = build_time(head)
        except Exception as e:
            print("clock: no build time:", repr(e))
    return _floor


def address(ntp):
    # "host" or "host:port" -> (host, port); ValueError for anything else.
    if not isinstance(ntp, str) or not ntp:
        raise ValueError("ntp must be 'host' or 'host:port', not %r" % (ntp,))
    host, _, port = ntp.partition(":")
    port = int(port) if port else PORT
    if not host or not 0 < port < 65536:
        raise ValueError("bad ntp address %r" % ntp)
    return host, port


def request():
    # A 48-byte SNTP client request: LI 0, version 4, mode 3; the transmit timestamp (our
    # clock, and microsecond ticks as a nonce) comes back as the reply's originate timestamp.
    req = bytearray(48)
    req[0] = 0x23
    struct.pack_into("!II", req, 40, (now() + NTP_DELTA) & 0xFFFFFFFF, time.ticks_us() & 0xFFFFFFFF)
    return req


def parse(reply, req):
    # (NTP seconds since 1900, microseconds) of a server's reply to req; ValueError(why).
    if len(reply) < 48:
        raise ValueError("short reply (%d bytes)" % len(reply))
    li, version, mode = reply[0] >> 6, reply[0] >> 3 & 7, reply[0] & 7
    if mode != 4 or version not in (3, 4):
        raise ValueError("not a server reply (version %d, mode %d)" % (version, mode))
    if reply[24:32] != req[40:48]:
        raise ValueError("not the answer to this request")
    if reply[1] == 0:
        raise ValueError("kiss-of-death %r" % bytes(reply[12:16]))
    if li == 3 or reply[1] > 15:
        raise ValueError("server not synchronized")
    secs, frac = struct.unpack_from("!II", reply, 40)
    if not secs and not frac:
        raise ValueError("zero transmit timestamp")
    if secs < 0x80000000:
        secs += 0x100000000  # RFC 4330 section 3: from 2036 on, era 1
    return secs, frac * 1000000 >> 32


def sntp(host, port=PORT):
    # One SNTP exchange: the server's time as (epoch seconds, microseconds).
    addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(TIMEOUT_S)
        s.connect(addr)  # replies from elsewhere are dropped
        req = request()
        s.send(req)
        reply = s.recv(64)
    finally:
        s.close()
    secs, us = parse(reply, req)
    return secs - NTP_DELTA, us


def check(t, fl):
    # A time from NTP is believed only within [floor - a day, floor + 20 years].
    if fl and t < fl - SLACK:
        raise ValueError("%s is before the firmware was built" % stamp(t))
    if fl and t > fl + AHEAD:
        raise ValueError("%s is more than 20 years after the firmware was built" % stamp(t))


def ready(ntp=DEFAULT):
    # Make the clock fit for TLS: the floor at once, NTP when an attempt is due. True once
    # NTP set the clock. Never raises: a clock that cannot be set is logged, not fatal.
    try:
        fl = floor()
        if not synced and now() < fl:  # NTP may set it a little below (the build's time zone)
            set_time(fl)
            print("clock: earlier than the firmware's build; set to", stamp())
        if ntp and (_due is None or time.ticks_diff(_due, time.ticks_ms()) <= 0):
            attempt(ntp, fl)
            gc.collect()  # what the attempt left behind goes before the TLS session allocates
    except Exception as e:
        print("clock: cannot set the clock:", repr(e))
    return synced


def attempt(ntp, fl):
    # One NTP exchange; the clock is set from a reply worth believing, else the next attempt
    # waits (10 s, doubling up to 10 min).
    global synced, _due, _wait
    try:
        host, port = address(ntp)
        t, us = sntp(host, port)
        check(t, fl)
    except Exception as e:  # unreachable, timed out, or a reply not to believe
        _due = time.ticks_add(time.ticks_ms(), _wait)
        why = repr(e)
        if isinstance(e, OSError) and e.args and e.args[0] in (11, 110, 116):  # EAGAIN, ETIMEDOUT
            why = "no answer in %d s" % TIMEOUT_S
        print("clock: NTP %s: %s; next try in %d s (clock %s)" % (ntp, why, _wait // 1000, stamp()))
        _wait = min(_wait * 2, MAX_WAIT_MS)
        return
    set_time(t, us)
    synced, _wait = True, FIRST_WAIT_MS
    _due = time.ticks_add(time.ticks_ms(), RESYNC_MS)
    print("clock: set by NTP %s to %s" % (ntp, stamp()))


def hint(err):
    # A TLS refusal over certificate dates: say that the board's clock is the likely cause.
    text = str(err)
    if "validity starts in the future" in text or "validity has expired" in text:
        print("clock: the server certificate's dates do not fit the board's clock (%s): "
              "the board needs NTP (config.json \"ntp\") to set its clock" % stamp())
