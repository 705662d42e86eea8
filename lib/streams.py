# AWS IoT MQTT-based file delivery: a file of a stream, read block by block over the MQTT
# connection the device already has (no second TLS session), as FreeRTOS OTA does.
#
#   $aws/things/<thing>/streams/<stream>/describe/json  -> .../description/json
#   $aws/things/<thing>/streams/<stream>/get/json       -> .../data/json, one message a block
#   errors                                               -> .../rejected/json
#
# Blocks are asked for WINDOW at a time and taken one message at a time as the caller reads:
# the rest wait in the TCP connection, so memory holds one block, not the window. A block
# that does not come is asked for again from where the reading is.

import binascii
import json
import os
import time

BLOCK = 4096  # bytes per block: one flash sector
WINDOW = 8  # blocks asked for in one request
TIMEOUT_MS = 10000
TRIES = 3


class StreamError(Exception):
    pass


class StreamFile:
    def __init__(self, conn, stream, file_id, timeout_ms=TIMEOUT_MS):
        self.conn = conn
        self.file_id = file_id
        self.timeout_ms = timeout_ms
        self.prefix = "$aws/things/%s/streams/%s/" % (conn.thing, stream)
        self.token = binascii.hexlify(os.urandom(4)).decode()
        self.version = None
        self.size = None
        self.reply = None  # (topic suffix, payload) of the last answer for our token
        conn.on(self.prefix, self._on_msg)
        for t in ("description/json", "data/json", "rejected/json"):
            conn.subscribe(self.prefix + t)

    def describe(self):
        # -> the file's size; also pins the stream version for the gets.
        r = self._ask("describe/json", {}, "description/json")
        for f in r.get("r") or ():
            if f.get("f") == self.file_id:
                self.version = r.get("s")
                self.size = f.get("z")
                return self.size
        raise StreamError("file %d is not in the stream" % self.file_id)

    def open(self, start):
        # A reader from byte `start` (a multiple of BLOCK), in the shape of https.Response.
        if self.size is None:
            self.describe()
        return _Reader(self, start // BLOCK)

    def request(self, block, count):
        req = {"c": self.token, "f": self.file_id, "l": BLOCK, "o": block, "n": count}
        if self.version is not None:
            req["s"] = self.version
        self.reply = None
        self.conn.publish(self.prefix + "get/json", json.dumps(req))

    def block(self, want):
        # Wait for block `want` of the requested run; blocks before it (repeats) are skipped.
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while True:
            r = self.reply
            if r is not None:
                self.reply = None
                kind, body = r
                if kind == "rejected/json":
                    raise StreamError("%s: %s" % (body.get("o"), body.get("m")))
                if kind == "data/json" and body.get("f") == self.file_id and body.get("i") == want:
                    return binascii.a2b_base64(body["p"])
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return None
            self.conn.wait(min(left, 200), one=True)  # one block in memory at a time

    def _ask(self, op, req, answer):
        req["c"] = self.token
        self.reply = None
        self.conn.publish(self.prefix + op, json.dumps(req))
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
            body = json.loads(msg)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("c") == self.token:
            self.reply = (kind, body)


class _Reader:
    def __init__(self, sf, block):
        self.sf = sf
        self.next = block  # the next block to take
        self.asked = block  # blocks below this one have been requested
        self.data = b""
        self.pos = 0
        self.total = sf.size
        self.last = (sf.size + BLOCK - 1) // BLOCK  # number of blocks

    def readinto(self, buf):
        if self.pos >= len(self.data):
            if self.next >= self.last:
                return 0
            self.data = self._take()
            self.pos = 0
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
        pass
