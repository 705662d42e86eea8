"""lib/fota/smp.py, Smp._packet: the shortest packet is an 8-byte SMP header and its CRC (a
length field of 10); it is read as a packet (whose empty body then fails as CBOR), while a
length field of 9 is garbled as a length field before any header is read."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import SMP, cases, mp

RUN = SMP + """
class Short(Uart):
    # an answer of just the SMP header, with a length field of 8 + 2 + EXTRA
    def any(self):
        if self.sent:
            self.sent = False
            msg = struct.pack(">BBHHBB", 1 << 3 | 3, 0, 0, 1, s.seq, 1)[:8 + EXTRA]
            pkt = struct.pack(">H", len(msg) + 2) + msg + struct.pack(">H", smp.crc16(msg))
            self.rx = b"\\x06\\x09" + binascii.b2a_base64(pkt, newline=False) + b"\\n"
        return len(self.rx)
u = Short(None)
s = smp.Smp(u)
out([error(s.upload, 5, b"x"), s.bad])
"""


@pytest.mark.parametrize("extra,why", cases([
    ("length-field-10", 0, "CBOR: "),
    ("length-field-9", -1, "length field 9")]))
def test_the_shortest_packet_is_a_header_and_its_crc(extra, why):
    got = mp(RUN.replace("EXTRA", str(extra)))
    assert got[0].startswith("SmpError: garbled answer to image upload: " + why)
    assert got[1].startswith(why)
