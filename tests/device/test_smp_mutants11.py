"""lib/fota/smp.py, Smp._packet: a packet that carries more bytes than its length field says is
garbled, even when the length and the CRC it names are right: the answer is not taken, and the
request ends as a garbled answer once its tries are spent."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import SMP, cases, mp

RUN = SMP + """
class Tail(Uart):
    # the answer's packet with TAIL after its CRC, in the same base64 line
    def any(self):
        if self.sent:
            self.sent = False
            self.n += 1
            body = bytearray(64)
            n = cbor.encode(body, 0, {"off": 1})
            msg = struct.pack(">BBHHBB", 1 << 3 | 3, 0, n, 1, s.seq, 1) + bytes(body[:n])
            pkt = struct.pack(">H", len(msg) + 2) + msg + struct.pack(">H", smp.crc16(msg)) + TAIL
            self.rx = b"\\x06\\x09" + binascii.b2a_base64(pkt, newline=False) + b"\\n"
        return len(self.rx)
u = Tail(None)
s = smp.Smp(u)
out([error(s.upload, 5, b"x"), u.n])
"""


@pytest.mark.parametrize("tail,want", cases([
    ("exact", b"", ["ok", 1]),
    ("one-byte-more", b"\x00", ["SmpError: garbled answer to image upload: more bytes than its length field says", 3])]))
def test_a_packet_longer_than_its_length_field_is_garbled(tail, want):
    assert mp(RUN.replace("TAIL", repr(tail))) == want
