# The board's clock, set before TLS checks certificate dates.
#
# An ESP32's clock reads 2000-01-01 after power-up (only a power-up resets the RTC timer), and
# mbedTLS checks the dates of every certificate of the server's chain, the trusted root too,
# against it: "The certificate validity starts in the future" or "... has expired"
# (x509_crt_verify_chain in mbedTLS's library/x509_crt.c; MicroPython's extmod/modtls_mbedtls.c
# raises that text as a ValueError). Publicly trusted server certificates live 47 to 200 days:
# a clock months ahead finds every one expired, a clock hours behind finds a renewed one not
# yet valid. micropython-lib's ntptime (frozen into ESP32 firmware) believes the first 48
# bytes that arrive and reads only their transmit seconds (micropython/net/ntptime/ntptime.py):
# one lying server sets the clock to anything. Here, no single source can:
# - the floor: the running firmware's build time (the app descriptor's date and time, as the
#   compiler wrote __DATE__ and __TIME__). A clock earlier than that is wrong: it is set to
#   the floor, on which a board without time service still accepts certificates issued before
#   its firmware was built.
# - sources: config.json's "ntp", a list of "host" or "host:port" (one string is a list of
#   one; "" or [] turns NTP off); by default three independent public services. A reply counts
#   only if it is a well-formed, synchronized server answer to our request (RFC 4330) between a
#   day before the floor (__TIME__ is the build machine's local time) and 20 years after it. A
#   kiss-of-death DENY or RSTR stops the board asking that server (RFC 4330 section 8).
# - believed: two servers (two addresses) whose times agree within AGREE seconds set the clock
#   (synced 2). Then a lone reply does not move it.
# - on trial: when no two agree, each time that came is tried by the TLS handshake that
#   follows, lowest first (a lie behind is bounded by the floor, one ahead is not). tls_ok()
#   confirms it (synced 1, as for a sole source); hint() of a certificate-date refusal takes the
#   next higher time ("not yet valid") or none ("expired"), then the floor if it lies that way.
# ready(ntp, feed) is called before each TLS session; it never raises and asks the sources only
# when due: at once after a believed clock met a date refusal, every 10 s doubling to a minute
# while no two agree, every 6 hours once they did. Each server gets one request and TIMEOUT_S
# to answer (its name lookup takes what the port's getaddrinfo takes: no timeout can be given);
# feed() (the watchdog) is called before each.

import gc
import socket
import struct
import time

DEFAULT = ("time.aws.com", "time.cloudflare.com", "pool.ntp.org")
PORT = 123
TIMEOUT_S = 1
FIRST_WAIT_MS = 10_000
MAX_WAIT_MS = 60_000
RESYNC_MS = 6 * 3600_000
AGREE = 60  # seconds: far inside any certificate's dates, far beyond the network's delay
SLACK = 86400  # the build machine's time zone
AHEAD = 7305 * 86400  # 20 years
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
EPOCH = time.gmtime(0)[0]  # 2000 on the ESP32, 1970 on the unix port
NTP_DELTA = 3155673600 if EPOCH == 2000 else 2208988800  # 1900-01-01 to the epoch

synced = 0  # 2: two sources agreed; 1: a time on trial let TLS through; 0: neither
_due = None  # ticks_ms of the next attempt; None: at the next call
_wait = FIRST_WAIT_MS
_floor = None
_trial = []  # times no other source confirmed, lowest first: (secs, us, ticks_ms, source, addr)
_on = None  # the source whose time the clock holds on trial
_denied = []  # sources that sent kiss-of-death DENY or RSTR


class Kiss(ValueError):
    pass


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


def sources(ntp):
    # config.json's "ntp" as a list: one "host[:port]" string or a list of them.
    if isinstance(ntp, str):
        return [ntp] if ntp else []
    if isinstance(ntp, (list, tuple)) and all(isinstance(s, str) for s in ntp):
        return ntp
    raise ValueError("ntp must be 'host[:port]' or a list of them, not %r" % (ntp,))


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
    if reply[1] == 0:  # the code is in the reference id (RFC 4330 section 8)
        raise Kiss("kiss-of-death " + "".join(chr(c) if 32 < c < 127 else "?" for c in reply[12:16]))
    if li == 3 or reply[1] > 15:
        raise ValueError("server not synchronized")
    secs, frac = struct.unpack_from("!II", reply, 40)
    if not secs and not frac:
        raise ValueError("zero transmit timestamp")
    if secs < 0x80000000:
        secs += 0x100000000  # RFC 4330 section 3: from 2036 on, era 1
    return secs, frac * 1000000 >> 32


def sntp(host, port=PORT):
    # One SNTP exchange: the server's time as (epoch seconds, microseconds, its address).
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
    return secs - NTP_DELTA, us, addr


def check(t, fl):
    # A time from NTP is believed only within [floor - a day, floor + 20 years].
    if fl and t < fl - SLACK:
        raise ValueError("%s is before the firmware was built" % stamp(t))
    if fl and t > fl + AHEAD:
        raise ValueError("%s is more than 20 years after the firmware was built" % stamp(t))


def apart(a, b):
    # Seconds by which reply a's time is ahead of reply b's, at the same moment.
    return a[0] - b[0] - time.ticks_diff(a[2], b[2]) // 1000


def put(r):
    # Set the clock to reply r's time, moved on by the ticks since it came.
    ms = r[1] // 1000 + time.ticks_diff(time.ticks_ms(), r[2])
    set_time(r[0] + ms // 1000, ms % 1000 * 1000)


def ready(ntp=DEFAULT, feed=None):
    # Make the clock fit for TLS: the floor at once, the sources when an attempt is due.
    # Returns synced. Never raises: a clock that cannot be set is logged, not fatal.
    try:
        fl = floor()
        if not synced and _on is None and now() < fl:  # a time on trial may be a little below
            set_time(fl)
            print("clock: earlier than the firmware's build; set to", stamp())
        if ntp and (_due is None or time.ticks_diff(_due, time.ticks_ms()) <= 0):
            attempt(sources(ntp), fl, feed)
            gc.collect()  # what the attempt left behind goes before the TLS session allocates
    except Exception as e:
        print("clock: cannot set the clock:", repr(e))
    return synced


def attempt(srcs, fl, feed=None):
    # Ask the sources in turn until two agree; otherwise what came goes on trial and the next
    # attempt waits (10 s, doubling up to a minute).
    global synced, _due, _wait, _trial, _on
    start = time.ticks_ms()
    got = []
    for src in srcs:
        if src in _denied:
            continue
        if feed:
            feed()
        try:
            host, port = address(src)
            t, us, addr = sntp(host, port)
            check(t, fl)
        except Exception as e:  # unreachable, timed out, or a reply not to believe
            why = repr(e)
            if isinstance(e, OSError) and e.args and e.args[0] in (11, 110, 116):  # EAGAIN, ETIMEDOUT
                why = "no answer in %d s" % TIMEOUT_S
            if isinstance(e, Kiss) and e.args[0][-4:] in ("DENY", "RSTR"):
                _denied.append(src)
                why += ", not asked again"
            print("clock: NTP %s: %s" % (src, why))
            continue
        r = (t, us, time.ticks_ms(), src, addr)
        for o in got:
            if o[4] != addr and abs(apart(r, o)) <= AGREE:
                put(r)
                synced, _trial, _on, _wait = 2, [], None, FIRST_WAIT_MS
                _due = time.ticks_add(time.ticks_ms(), RESYNC_MS)
                print("clock: set by NTP %s and %s, which agree, to %s" % (o[3], src, stamp()))
                return
        got.append(r)
    _due = time.ticks_add(start, _wait)
    print("clock: no two of %d time sources agree (%d answered); next try in %d s (clock %s)"
          % (len(srcs), len(got), _wait // 1000, stamp()))
    _wait = min(_wait * 2, MAX_WAIT_MS)
    if got and synced != 2:
        ref = got[0]
        got.sort(key=lambda r: apart(r, ref))
        synced, _trial = 0, got
        take()


def take():
    # The clock takes the lowest time on trial; the TLS handshake that follows judges it.
    global _on
    r = _trial.pop(0)
    put(r)
    _on = r[3]
    print("clock: set by NTP %s alone to %s, on trial: the TLS handshake decides" % (_on, stamp()))


def tls_ok():
    # A TLS handshake got through: the time on trial, if any, is confirmed.
    global synced, _trial, _on, _due, _wait
    if _on is not None:
        print("clock: NTP %s's time let TLS through" % _on)
        synced, _trial, _on, _wait = 1, [], None, FIRST_WAIT_MS
        _due = time.ticks_add(time.ticks_ms(), RESYNC_MS)


def hint(err):
    # A TLS refusal. Over certificate dates the clock is wrong: the next time on trial, else
    # the floor where it lies the way the refusal points, and the sources asked again (at once
    # if the clock was believed). True when the clock moved: worth a new handshake at once.
    global synced, _trial, _on, _due
    text = str(err)
    expired = "validity has expired" in text
    if not expired and "validity starts in the future" not in text:
        return False
    print("clock: the server certificate's dates do not fit the board's clock (%s): %s"
          % (stamp(), " ".join(text.split())))
    if synced:
        _due = None
    synced, _on = 0, None
    if expired:
        _trial = []  # the clock is ahead: every later time on trial would be too
    if _trial:
        take()
        return True
    fl, t = floor(), now()
    if fl and (t - fl if expired else fl - t) > AGREE:
        set_time(fl)
        print("clock: no time source agrees; back to the firmware's build time,", stamp())
        return True
    print("clock: the board needs time sources that agree (config.json \"ntp\")")
    return False
