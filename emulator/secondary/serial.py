"""SMP over a serial line, as Zephyr's SMP Transport Specification ("UART/serial and console")
and mcumgr's transport/smp-console.md describe it.

A packet is `[u16 length][SMP message][u16 CRC16]` (big-endian; length counts the message
and the CRC), base64-encoded and cut into lines of at most 127 bytes, newline included. The
first line starts with 0x06 0x09, each further line with 0x04 0x14. The CRC is CRC-16/XMODEM
(CCITT polynomial 0x1021, initial value 0) of the message. Bytes outside such lines are
ordinary console output and are skipped.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass, field

START = b"\x06\x09"
CONTINUE = b"\x04\x14"
MAX_LINE = 127  # bytes per line, delimiter and newline included


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/XMODEM: polynomial 0x1021, initial value 0, no reflection, no final XOR."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_packet(message: bytes, *, bad_crc: bool = False) -> bytes:
    """The lines that carry `message`. Each line carries whole 3-byte groups of the packet
    (93 bytes, 124 base64 characters), so that every line decodes on its own."""
    crc = crc16(message) ^ (0xFFFF if bad_crc else 0)
    packet = struct.pack(">H", len(message) + 2) + message + struct.pack(">H", crc)
    per_line = (MAX_LINE - len(START) - 1) // 4 * 3
    out = bytearray()
    for i in range(0, len(packet), per_line):
        out += START if i == 0 else CONTINUE
        out += base64.b64encode(packet[i:i + per_line]) + b"\n"
    return bytes(out)


@dataclass
class Receiver:
    """Reassembles packets from the bytes of the line, as Zephyr's UART transport does: a
    start line begins a packet (dropping any unfinished one), continuation lines add to it,
    a packet is complete when it holds `length` bytes. Dropped without an answer: a line
    longer than 127 bytes, a line that is not base64, a packet longer than `buf_size` (the
    transport's reassembly buffer, the MCUmgr parameter buf_size) and a packet whose CRC is
    wrong. `dropped` counts them."""

    buf_size: int = 1024
    dropped: int = 0
    _line: bytearray = field(default_factory=bytearray)
    _too_long: bool = False
    _packet: bytearray | None = None
    _want: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Take bytes from the line; return the SMP messages completed by them."""
        done = []
        for byte in data:
            if byte != 0x0A:
                if len(self._line) < MAX_LINE:
                    self._line.append(byte)
                else:
                    self._too_long = True
                continue
            line, too_long = bytes(self._line), self._too_long
            self._line.clear()
            self._too_long = False
            message = self._take_line(line, too_long)
            if message is not None:
                done.append(message)
        return done

    def _drop(self) -> None:
        self._packet = None
        self.dropped += 1

    def _take_line(self, line: bytes, too_long: bool) -> bytes | None:
        head = line[:2]
        if head not in (START, CONTINUE):
            return None  # console text
        if head == START:
            self._packet = bytearray()
            self._want = 0
        elif self._packet is None:
            return None  # a continuation of nothing
        if too_long or len(line) + 1 > MAX_LINE:
            self._drop()
            return None
        try:
            chunk = base64.b64decode(line[2:].rstrip(b"\r"), validate=True)
        except (binascii.Error, ValueError):
            self._drop()
            return None
        assert self._packet is not None
        self._packet += chunk
        if head == START:
            if len(self._packet) < 2:
                self._drop()
                return None
            self._want = struct.unpack(">H", self._packet[:2])[0]
        if self._want + 2 > self.buf_size:
            self._drop()
            return None
        have = len(self._packet) - 2
        if have < self._want:
            return None
        body = bytes(self._packet[2:])
        self._packet = None
        if have > self._want or self._want < 2 or crc16(body) != 0:
            self.dropped += 1  # the CRC over message + CRC is 0 when they agree
            return None
        return body[:-2]
