# AWS IoT MQTT-based file delivery: a file of a stream, read block by block over the MQTT
# connection the device already has (no second TLS session), as FreeRTOS OTA does. Blocks
# come in CBOR, as the FreeRTOS agent asks for them: raw bytes, a third smaller than base64 in
# JSON, read in place from the message without a decoded copy. The one description is JSON.
#
#   $aws/things/<thing>/streams/<stream>/describe/json  -> .../description/json
#   $aws/things/<thing>/streams/<stream>/get/cbor       -> .../data/cbor, one message a block
#   errors                                               -> .../rejected/json or /cbor
#
# JSON is the fallback: FORMAT = "json" (or StreamFile(..., fmt="json")) asks get/json, and a
# reader whose first CBOR request is not answered, or refused for its format (InvalidCbor,
# InvalidTopic), asks again in JSON, for good.
# A JSON block's payload is base64 ("p"): it is decoded from the message into one block of
# bytes, and only the rest of the message goes through json.
#
# Blocks are asked for WINDOW at a time and taken one message at a time as the caller reads:
# the rest wait in the TCP connection, so memory holds one block, not the window. A block
# that does not come is asked for again from where the reading is. Memory: requests are
# encoded into one fixed buffer; each block is the message umqtt.simple reads (about BLOCK
# bytes) and nothing else that grows with the block or the file.

import binascii
import json
import os
import struct
import time

BLOCK = 4096  # bytes per block: one flash sector
WINDOW = 8  # blocks asked for in one request
TIMEOUT_MS = 10000
TRIES = 3
FORMAT = "cbor"  # how blocks are asked for: "cbor" (raw bytes) or "json" (base64)


class StreamError(Exception):
    pass


class StreamFile:
    def __init__(self, conn, stream, file_id, timeout_ms=TIMEOUT_MS, fmt=None):
        self.conn = conn
        self.fmt = fmt or FORMAT
        self.proven = False  # a block came in self.fmt: no fallback from then on
        self.file_id = file_id
        self.timeout_ms = timeout_ms
        self.prefix = "$aws/things/%s/streams/%s/" % (conn.thing, stream)
        self.token = binascii.hexlify(os.urandom(4)).decode()
        self.req = bytearray(64)  # every request is encoded here
        self.version = None
        self.size = None
        self.reply = None  # (topic suffix, decoded map) of the last answer for our token
        conn.on(self.prefix, self._on_msg)
        for t in ("description/json", "rejected/json", "data/json", "data/cbor", "rejected/cbor"):
            conn.subscribe(self.prefix + t)

    def describe(self):
        # -> the file's size; also pins the stream version for the gets.
        r = self._ask("describe/json", "description/json")
        for f in r.get("r") or ():
            if isinstance(f, dict) and f.get("f") == self.file_id:
                self.version = r.get("s")
                self.size = f.get("z")
                if not isinstance(self.size, int) or self.size <= 0:
                    raise StreamError("file %d has no size" % self.file_id)
                return self.size
        raise StreamError("file %d is not in the stream" % self.file_id)

    def open(self, start):
        # A reader from byte `start`, in the shape of https.Response (a start inside a block,
        # where a compressed file's piece begins, skips the block's first bytes).
        if self.size is None:
            self.describe()
        return _Reader(self, start)

    def request(self, block, count):
        fields = (("f", self.file_id), ("l", BLOCK), ("o", block), ("n", count))
        if self.version is not None:
            fields += (("s", self.version),)
        self.reply = None
        if self.fmt == "json":
            self.conn.publish(self.prefix + "get/json", json.dumps(dict((("c", self.token),) + fields)))
            return
        n = _encode(self.req, (("c", self.token),) + fields)
        self.conn.publish(self.prefix + "get/cbor", memoryview(self.req)[:n])

    def block(self, want):
        # Wait for block `want` of the requested run; blocks before it (repeats) are skipped.
        # -> the block's bytes (a view into its message), or None after the timeout (or after
        # the first CBOR request was refused for its format: the next request goes in JSON).
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while True:
            r = self.reply
            if r is not None:
                self.reply = None
                kind, body = r
                if kind == "rejected/" + self.fmt:
                    if body.get("o") in ("InvalidTopic", "InvalidCbor") and self._fallback():
                        return None
                    raise StreamError("%s: %s" % (body.get("o"), body.get("m")))
                if kind == "data/" + self.fmt and body.get("f") == self.file_id and body.get("i") == want:
                    data = body.get("p")
                    n = min(BLOCK, self.size - want * BLOCK)
                    if not isinstance(data, memoryview) or len(data) != n:
                        raise StreamError("block %d is not %d bytes" % (want, n))
                    self.proven = True
                    return data
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                self._fallback()
                return None
            self.conn.wait(min(left, 200), one=True)  # one block in memory at a time

    def _fallback(self):
        # CBOR refused or unanswered before any block came: JSON from now on.
        if self.fmt != "cbor" or self.proven:
            return False
        self.fmt = "json"
        return True

    def _ask(self, op, answer):
        self.reply = None
        self.conn.publish(self.prefix + op, json.dumps({"c": self.token}))
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while self.reply is None:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                raise StreamError("no answer to %s" % op)
            self.conn.wait(min(left, 200))
        kind, body = self.reply
        self.reply = None
        if kind != answer:
            raise StreamError("%s: %s" % (body.get("o"), body.get("m")))
        return body

    def _on_msg(self, topic, msg):
        kind = topic[len(self.prefix):]
        try:
            if kind.endswith("/cbor"):
                body = _decode(memoryview(msg))
            elif kind == "data/json":
                body = _json_block(msg)
            else:
                body = json.loads(msg)
        except (StreamError, IndexError, TypeError, ValueError, UnicodeError):
            return  # not a message we can read: not an answer to us
        if isinstance(body, dict) and body.get("c") == self.token:
            self.reply = (kind, body)


class _Reader:
    def __init__(self, sf, start):
        self.sf = sf
        self.next = start // BLOCK  # the next block to take
        self.asked = self.next  # blocks below this one have been requested
        self.data = None  # the block being read (a view into its message)
        self.pos = 0
        self.skip = start % BLOCK  # bytes of the first block before start
        self.total = sf.size
        self.last = (sf.size + BLOCK - 1) // BLOCK  # number of blocks

    def readinto(self, buf):
        if self.data is None or self.pos >= len(self.data):
            self.data = None  # let the last message go before the next one is read
            if self.next >= self.last:
                return 0
            self.data = self._take()
            self.pos = self.skip
            self.skip = 0
        n = min(len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

    def _take(self):
        for _ in range(TRIES):
            if self.next >= self.asked:
                count = min(WINDOW, self.last - self.next)
                self.sf.request(self.next, count)
                self.asked = self.next + count
            data = self.sf.block(self.next)
            if data is not None:
                self.next += 1
                return data
            self.asked = self.next  # lost: ask again from here
        raise OSError("stream block %d did not come" % self.next)

    def close(self):
        self.data = None


def _json_block(msg):
    # {"c": token, "f": file, "l": size, "i": block, "p": "<base64>"} -> the map, with "p" as
    # the decoded bytes: the base64 text is decoded straight from the message (one block of
    # bytes), and json reads the rest without it.
    i = msg.find(b'"p"')
    a = msg.find(b'"', msg.find(b":", i) + 1) + 1
    b = msg.find(b'"', a)
    if i < 0 or a <= i or b < 0:
        raise ValueError("no payload")
    body = json.loads(msg[:i] + b'"p":0' + msg[b + 1:])
    body["p"] = memoryview(binascii.a2b_base64(memoryview(msg)[a:b]))
    return body


# --- CBOR (RFC 8949): what the stream messages use, nothing more ------------------------------

def _encode(buf, fields):
    # A map of text keys to unsigned integers or text, into buf -> its length.
    i = _head(buf, 0, 5, len(fields))
    for k, v in fields:
        i = _text(buf, i, k)
        i = _text(buf, i, v) if isinstance(v, str) else _head(buf, i, 0, v)
    return i


def _text(buf, i, s):
    b = s.encode()
    i = _head(buf, i, 3, len(b))
    buf[i:i + len(b)] = b
    return i + len(b)


def _head(buf, i, major, v):
    if v < 24:
        buf[i] = major << 5 | v
        return i + 1
    if v < 0x100:
        buf[i] = major << 5 | 24
        buf[i + 1] = v
        return i + 2
    if v < 0x10000:
        buf[i] = major << 5 | 25
        struct.pack_into(">H", buf, i + 1, v)
        return i + 3
    buf[i] = major << 5 | 26
    struct.pack_into(">I", buf, i + 1, v)
    return i + 5


def _decode(mv):
    # A map of text keys to unsigned integers, text or byte strings (what data and rejected
    # messages hold) -> dict; byte strings are views into mv (no copy). One pass, no call per
    # item: a MicroPython call with this many locals allocates its frame on the heap.
    if mv[0] >> 5 != 5 or mv[0] & 31 >= 24:
        raise StreamError("not a small CBOR map")
    out = {}
    key = None
    i = 1
    for _ in range(2 * (mv[0] & 31)):
        b = mv[i]
        major, v = b >> 5, b & 31
        i += 1
        if v >= 24:
            if v > 27:
                raise StreamError("unsupported CBOR item")
            n = 1 << (v - 24)
            v = 0
            for k in range(i, i + n):
                v = v << 8 | mv[k]
            i += n
        if major == 2 or major == 3:
            if v > len(mv) - i:
                raise StreamError("CBOR string past the message")
            x = mv[i:i + v] if major == 2 else str(mv[i:i + v], "utf-8")
            i += v
        elif major == 0:
            x = v
        else:
            raise StreamError("unsupported CBOR item")
        if key is None:
            key = x
        else:
            out[key] = x
            key = None
    return out
