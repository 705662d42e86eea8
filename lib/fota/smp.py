# MCUmgr's Simple Management Protocol (SMP) over a serial line: the client side of the few
# requests that update an MCUboot-based MCU (Zephyr's image and OS management groups).
#
# A message is an 8-byte header (op, flags, length, group, sequence, command) and a CBOR map.
# On the serial line (SMP's console transport) the packet
#     length of what follows (2 bytes, big-endian) | message | CRC16-XMODEM of the message
# goes in base64, cut into lines of at most 127 bytes: the first starts 0x06 0x09, the next
# ones 0x04 0x14, each ends with "\n". Lines without these marks (the MCU's console) are
# skipped. Each request waits TIMEOUT_MS for its answer and is sent again up to TRIES times;
# every wait calls feed() (the watchdog's, where the caller gives one), and a line that never
# falls quiet is drained for TIMEOUT_MS at most.
#
#   images()            image state read      -> [{"slot", "version", "hash", "active",
#                                                   "confirmed", "pending", ...}, ...]
#   upload(off, data)   image upload          -> the MCU's offset: where the next byte goes
#   test(hash)          image state write     boot this image once at the next reset
#   confirm()           image state write     make the running image permanent
#   erase()             image erase           the secondary slot
#   params()            MCUmgr parameters     -> the MCU's buffer size, or None
#   reset()             OS reset: sent once, a lost answer is no error (see reset)

import binascii
import struct
import time

from fota import cbor

OP_READ, OP_WRITE = 0, 2
GROUP_OS, GROUP_IMAGE = 0, 1
VERSION = 1  # SMP version 2: errors come as {"err": {"group", "rc"}}
TIMEOUT_MS = 3000
TRIES = 3
MTU = 512  # largest message (header + CBOR) sent or taken
PIECE = 90  # packet bytes per line: 120 base64 characters, 123 bytes with marks and "\n"
START, MORE = b"\x06\x09", b"\x04\x14"

# MCUmgr's general result codes (MGMT_ERR_*)
ERRORS = ("ok", "unknown", "no memory", "invalid argument", "timeout", "no such entry",
          "bad state", "message too large", "not supported", "corrupt", "busy",
          "access denied", "protocol too old", "protocol too new")
# image management's own codes (IMG_MGMT_ERR_*) that an update can meet
IMAGE_ERRORS = {1: "unknown", 3: "no image", 4: "no TLVs", 5: "invalid TLV", 8: "hash not found",
                9: "no free slot", 14: "invalid slot", 20: "invalid offset",
                21: "invalid length", 22: "invalid image header", 23: "bad image header magic",
                24: "invalid hash", 27: "current version is newer", 28: "image already pending",
                30: "image too large for its slot", 31: "image data overrun",
                33: "the running image cannot be set for test"}
NAMES = {(GROUP_OS, 5): "reset", (GROUP_OS, 6): "MCUmgr parameters", (GROUP_IMAGE, 0): "image state",
         (GROUP_IMAGE, 1): "image upload", (GROUP_IMAGE, 5): "image erase"}

_CRC = (0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
        0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF)


class SmpError(Exception):
    pass


def crc16(mv):
    # CRC-16/XMODEM (polynomial 0x1021, initial 0), four bits at a time.
    c = 0
    for b in mv:
        c = ((c << 4) & 0xFFFF) ^ _CRC[(c >> 12) ^ (b >> 4)]
        c = ((c << 4) & 0xFFFF) ^ _CRC[(c >> 12) ^ (b & 15)]
    return c


def _nothing():
    pass


class Smp:
    def __init__(self, uart, timeout_ms=TIMEOUT_MS, feed=_nothing):
        self.uart = uart
        self.timeout_ms = timeout_ms
        self.feed = feed  # called in every wait
        self.seq = 0
        self.buf = bytearray(2 + MTU + 2)  # length | message | CRC, sent and received here
        self.line = bytearray(132)  # one line of the answer
        self.rx = bytearray(64)  # bytes read from the UART and not looked at yet
        self.rn = self.rp = 0
        self.bad = None  # why the last line that looked like SMP could not be read

    # --- the requests -----------------------------------------------------------------------

    def images(self):
        return self.request(OP_READ, GROUP_IMAGE, 0, {}).get("images") or []

    def upload(self, off, data, size=None):
        req = {"off": off, "data": data}
        if off == 0:
            req["image"] = 0
            req["len"] = size
        off = self.request(OP_WRITE, GROUP_IMAGE, 1, req).get("off")
        if not isinstance(off, int):
            raise SmpError("upload answer has no offset")
        if off < 0:  # a CBOR negative integer: no byte of an image
            raise SmpError("upload answer has offset %d" % off)
        return off

    def test(self, hash):
        return self.request(OP_WRITE, GROUP_IMAGE, 0, {"hash": hash, "confirm": False})

    def confirm(self):
        return self.request(OP_WRITE, GROUP_IMAGE, 0, {"confirm": True})

    def erase(self):
        return self.request(OP_WRITE, GROUP_IMAGE, 5, {"slot": 1})

    def params(self):
        try:
            n = self.request(OP_READ, GROUP_OS, 6, {}, tries=1).get("buf_size")
        except SmpError:
            return None  # an older server: the caller keeps its default
        return n if isinstance(n, int) else None

    def reset(self):
        # Sent once: an MCU whose answer was lost may have reset all the same, and a second
        # reset would end the test boot of the image it swapped in (MCUboot reverts it). The
        # caller reads the image state to know.
        self.request(OP_WRITE, GROUP_OS, 5, {}, tries=1, lost=True)

    # --- one request and its answer ---------------------------------------------------------

    def request(self, op, group, cmd, fields, tries=TRIES, lost=False):
        # -> the answer (a dict); SmpError if it carries an error, or if none came (unless
        # lost: then None).
        what = NAMES.get((group, cmd)) or "group %d command %d" % (group, cmd)
        for _ in range(tries):
            self.seq = (self.seq + 1) & 0xFF
            self._send(op, group, cmd, fields)
            answer = self._answer(op + 1, group, cmd)
            if answer is not None:
                return _check(answer, what)
        if lost:
            return None
        if self.bad:
            raise SmpError("garbled answer to %s: %s" % (what, self.bad))
        raise SmpError("no answer to %s in %d ms" % (what, self.timeout_ms))

    def _send(self, op, group, cmd, fields):
        buf = self.buf
        try:
            n = cbor.encode(buf, 10, fields) - 10
        except (IndexError, ValueError, cbor.CborError):
            n = MTU  # it ran past the buffer
        if 8 + n > MTU:  # the CRC goes after it: a longer one would not fit (or get out)
            raise SmpError("request does not fit %d bytes" % MTU)
        struct.pack_into(">HBBHHBB", buf, 0, 8 + n + 2, VERSION << 3 | op, 0, n, group,
                         self.seq, cmd)
        end = 10 + n
        struct.pack_into(">H", buf, end, crc16(memoryview(buf)[2:end]))
        end += 2
        mv = memoryview(buf)
        self._drain()  # what came before this request answers nothing of it
        for i in range(0, end, PIECE):
            self.uart.write(START if i == 0 else MORE)
            self.uart.write(binascii.b2a_base64(mv[i:min(i + PIECE, end)], newline=False))
            self.uart.write(b"\n")

    def _answer(self, op, group, cmd):
        # The answer to the request just sent -> dict, or None after the timeout. Answers to
        # earlier tries (another sequence number) are skipped.
        self.bad = None
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while True:
            n = self._packet(deadline)
            if n is None:
                return None
            got_op, _, length, got_group, seq, got_cmd = struct.unpack_from(">BBHHBB", self.buf, 2)
            if (got_op & 7, got_group, seq, got_cmd) != (op, group, self.seq, cmd):
                continue
            if length != n - 8:
                self.bad = "length %d in a %d-byte message" % (length, n - 8)
                continue
            try:
                answer = cbor.decode(memoryview(self.buf)[10:10 + length])
            except cbor.CborError as e:
                self.bad = "CBOR: %s" % e
                continue
            if not isinstance(answer, dict):
                self.bad = "answer is not a map"
                continue
            return answer

    def _packet(self, deadline):
        # One whole packet into self.buf -> the length of its message (between the length
        # field and the CRC), or None after the deadline.
        have = need = 0
        while True:
            k = self._line(deadline)
            if k is None:
                return None
            line = memoryview(self.line)[:k]
            mark = bytes(line[:2])
            if mark == START:
                have = 0
            elif mark != MORE or not need:
                continue  # console output, or a continuation without its start
            try:
                data = binascii.a2b_base64(line[2:])
            except ValueError:
                self.bad, need = "line is not base64", 0
                continue
            if have + len(data) > len(self.buf):
                self.bad, need = "answer longer than %d bytes" % MTU, 0
                continue
            self.buf[have:have + len(data)] = data
            have += len(data)
            if mark == START:
                need = struct.unpack_from(">H", self.buf, 0)[0] + 2 if have >= 2 else 0
                if need < 2 + 8 + 2 or need > len(self.buf):
                    self.bad, need = "length field %d" % (need - 2), 0
                    continue
            if have < need:
                continue
            if have > need:
                self.bad, need = "more bytes than its length field says", 0
                continue
            crc = struct.unpack_from(">H", self.buf, need - 2)[0]
            if crc != crc16(memoryview(self.buf)[2:need - 2]):
                self.bad, need = "bad CRC", 0
                continue
            return need - 4

    def _line(self, deadline):
        # One line from the UART into self.line, without its "\n" -> its length, or None
        # after the deadline. An overlong line is cut (it then fails as SMP).
        k = 0
        while True:
            while self.rp < self.rn:
                b = self.rx[self.rp]
                self.rp += 1
                if b == 10:
                    return k
                if k < len(self.line):
                    self.line[k] = b
                    k += 1
            self.feed()
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return None
            if self.uart.any():
                self.rn = self.uart.readinto(self.rx) or 0
                self.rp = 0
            else:
                time.sleep_ms(1)

    def _drain(self):
        # What came before this request answers nothing of it: dropped, for timeout_ms at most.
        self.rn = self.rp = 0
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while self.uart.any() and time.ticks_diff(deadline, time.ticks_ms()) > 0:
            self.uart.readinto(self.rx)
            self.feed()


def _check(answer, what):
    # An answer carrying an error -> SmpError naming it.
    err = answer.get("err")
    why = answer.get("rsn")  # a server's reason, where it gives one
    why = " - %s" % why if isinstance(why, str) and why else ""
    if isinstance(err, dict):
        rc, group = err.get("rc"), err.get("group")
        if rc:
            name = IMAGE_ERRORS.get(rc, "error") if group == GROUP_IMAGE else "error"
            raise SmpError("%s refused: group %s rc %s (%s)%s" % (what, group, rc, name, why))
    rc = answer.get("rc")
    if isinstance(rc, int) and rc:
        name = ERRORS[rc] if 0 <= rc < len(ERRORS) else "error"
        raise SmpError("%s refused: rc %d (%s)%s" % (what, rc, name, why))
    return answer
