"""lib/fota/clock.py's pure pieces in MicroPython, each on both sides of its bounds: dates to
seconds, the build time of an image header, SNTP requests and replies, the window a time must
fall in, and config.json's "ntp"."""

from __future__ import annotations

import calendar
import json
import struct

from tests.device.mpy import run_json

NTP_DELTA = 2208988800  # 1900 to 1970, the unix port's epoch


def clock(code: str) -> object:
    return run_json("import json\nfrom fota import clock\n" + code)


def test_dates_to_seconds_match_the_calendar():
    dates = [(1970, 1, 1, 0, 0, 0), (1999, 12, 31, 23, 59, 59), (2000, 1, 1, 0, 0, 0),
             (2000, 2, 28, 12, 0, 0), (2000, 2, 29, 12, 0, 0), (2000, 3, 1, 0, 0, 0),
             (2001, 2, 28, 0, 0, 0), (2001, 3, 1, 0, 0, 0), (2100, 2, 28, 0, 0, 0),
             (2100, 3, 1, 0, 0, 0), (2024, 12, 31, 23, 59, 59), (2025, 1, 1, 0, 0, 1),
             (2036, 2, 7, 6, 28, 16), (2400, 2, 29, 1, 2, 3), (2026, 6, 15, 8, 30, 45)]
    got = clock("print(json.dumps([clock.seconds(*d) for d in %s]))" % json.dumps(dates))
    assert got == [calendar.timegm(d + (0, 0, 0)) for d in dates]


def header(date: bytes = b"Dec  5 2026", time_: bytes = b"16:58:10", magic: int = 0xABCD5432,
           first: int = 0xE9, size: int = 144) -> str:
    h = bytearray(160)
    h[0] = first
    struct.pack_into("<I", h, 32, magic)
    h[112:112 + len(time_)] = time_
    h[128:128 + len(date)] = date
    return bytes(h[:size]).hex()


def test_the_build_time_of_an_image_header():
    cases = [header(), header(size=143), header(first=0xE8), header(magic=0xABCD5433),
             header(date=b"Feb 29 2028", time_=b"00:00:00"), header(date=b"Jan  1 2000", time_=b"23:59:59"),
             header(date=b"Foo  5 2026"), header(date=b"Dec  5"), header(time_=b"16:58"),
             header(date=b""), header(time_=b"xx:00:00")]
    got = clock("import binascii\nprint(json.dumps([clock.build_time(binascii.unhexlify(h)) for h in %s]))"
                % json.dumps(cases))
    assert got == [calendar.timegm((2026, 12, 5, 16, 58, 10)), 0, 0, 0,
                   calendar.timegm((2028, 2, 29, 0, 0, 0)), calendar.timegm((2000, 1, 1, 23, 59, 59)),
                   0, 0, 0, 0, 0]


def test_a_request_is_version_4_client_mode_and_carries_its_nonce():
    req, t = clock("r = clock.request(); import time\nprint(json.dumps([list(r), int(time.time())]))")
    assert len(req) == 48 and req[0] == 0x23 and not any(req[1:40])
    secs = struct.unpack("!I", bytes(req[40:44]))[0]
    assert abs(secs - NTP_DELTA - t) <= 2


PARSE = """
req = bytearray(48); req[40:48] = b"\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08"
def reply(first=0x24, stratum=2, ref=b"GPS\\0", secs=0xE8000000, frac=0x80000000, orig=None, n=48):
    r = bytearray(max(n, 48))
    r[0] = first; r[1] = stratum; r[12:16] = ref
    r[24:32] = req[40:48] if orig is None else orig
    r[40:44] = secs.to_bytes(4, "big"); r[44:48] = frac.to_bytes(4, "big")
    return r[:n]
out = []
for kw in %s:
    if "ref" in kw: kw["ref"] = bytes(kw["ref"])
    if "orig" in kw: kw["orig"] = bytes(kw["orig"])
    try:
        out.append(list(clock.parse(reply(**kw), req)))
    except ValueError as e:
        out.append("%%s: %%s" %% (type(e).__name__, e))
print(json.dumps(out))
"""


def test_an_sntp_reply_is_checked_field_by_field():
    cases = [
        {}, {"n": 47}, {"n": 64},
        {"first": 0x23}, {"first": 0x25}, {"first": 0x1C}, {"first": 0x14}, {"first": 0x2C},
        {"orig": [1, 2, 3, 4, 5, 6, 7, 9]},
        {"stratum": 0, "ref": list(b"DENY")}, {"stratum": 0, "ref": [32, 33, 126, 127]},
        {"first": 0xE4}, {"first": 0xA4}, {"stratum": 15}, {"stratum": 16}, {"stratum": 1},
        {"secs": 0, "frac": 0}, {"secs": 0, "frac": 1}, {"secs": 1, "frac": 0},
        {"secs": 0x7FFFFFFF}, {"secs": 0x80000000}, {"frac": 0}, {"frac": 0xFFFFFFFF},
    ]
    got = clock(PARSE % json.dumps(cases))
    assert got == [
        [0xE8000000, 500000], "ValueError: short reply (47 bytes)", [0xE8000000, 500000],
        "ValueError: not a server reply (version 4, mode 3)",
        "ValueError: not a server reply (version 4, mode 5)",
        [0xE8000000, 500000],  # version 3
        "ValueError: not a server reply (version 2, mode 4)",
        "ValueError: not a server reply (version 5, mode 4)",
        "ValueError: not the answer to this request",
        "Kiss: kiss-of-death DENY", "Kiss: kiss-of-death ?!~?",
        "ValueError: server not synchronized", [0xE8000000, 500000],  # leap indicator 3, 2
        [0xE8000000, 500000], "ValueError: server not synchronized", [0xE8000000, 500000],
        "ValueError: zero transmit timestamp", [0x100000000, 0], [0x100000001, 0],
        [0x17FFFFFFF, 500000], [0x80000000, 500000], [0xE8000000, 0], [0xE8000000, 999999],
    ]


def test_a_time_is_believed_only_between_a_day_before_the_build_and_20_years_after():
    fl = 1_800_000_000
    slack, ahead = 86400, 7305 * 86400
    times = [fl - slack - 1, fl - slack, fl, fl + ahead, fl + ahead + 1]
    got = clock("""
out = []
for fl, t in %s:
    try:
        clock.check(t, fl); out.append("ok")
    except ValueError as e:
        out.append(str(e).split(" is ")[1])
print(json.dumps(out))""" % json.dumps([[fl, t] for t in times] + [[0, 1], [0, 4_000_000_000]]))
    assert got == ["before the firmware was built", "ok", "ok", "ok",
                   "more than 20 years after the firmware was built", "ok", "ok"]


def test_ntp_in_config_json_both_ways():
    got = clock("""
out = []
for v in ["a.example", "", [], ["a", "b:124"], ("a",), ["a", 1], 5, None]:
    try:
        out.append(clock.sources(v))
    except ValueError as e:
        out.append("error")
for v in ["h", "h:1", "h:65535", "h:0", "h:65536", ":123", "", 5, "h:x"]:
    try:
        out.append(list(clock.address(v)))
    except ValueError as e:
        out.append(str(e))
print(json.dumps(out))""")
    assert got == [["a.example"], [], [], ["a", "b:124"], ["a"], "error", "error", "error",
                   ["h", 123], ["h", 1], ["h", 65535],
                   "bad ntp address 'h:0'", "bad ntp address 'h:65536'", "bad ntp address ':123'",
                   "ntp must be 'host' or 'host:port', not ''", "ntp must be 'host' or 'host:port', not 5",
                   "invalid syntax for integer with base 10: 'x'"]


def test_two_replies_apart_at_the_same_moment():
    # apart(a, b): a's seconds minus b's, less the seconds between their arrivals
    got = clock("print(json.dumps([clock.apart((100, 0, 5000), (90, 0, 1000)), "
                "clock.apart((100, 0, 1000), (90, 0, 5000)), clock.apart((100, 0, 1999), (100, 0, 1000))]))")
    assert got == [6, 14, 0]
