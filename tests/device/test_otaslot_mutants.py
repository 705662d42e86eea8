"""lib/fota/otaslot.py, SlotWriter.feed_from at the end of the image: it returns 0 and asks the
stream for nothing, whatever the stream still holds (an HTTPS response with bytes to come takes
a read of 0 bytes for a closed connection)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import SLOTS, cases, mp


@pytest.mark.parametrize("size", cases([("stream-is-the-image", 150), ("a-byte-more", 149), ("less", 100)]))
def test_feeding_a_whole_image_asks_the_stream_for_nothing_more(size):
    # a response of 150 bytes into an image of `size`: `while w.feed_from(r)` stops at its end
    got = mp(SLOTS + f"""
from fota import https
class Sock:
    def __init__(self):
        self.reads = []
    def readinto(self, mv):
        self.reads.append(len(mv))
        mv[:len(mv)] = bytes(len(mv))
        return len(mv)
sock = Sock()
r = https.Response(sock, 200, 150, 150)
w = otaslot.SlotWriter(Part(), {size})
def feed():
    while w.feed_from(r):
        pass
out([error(feed), w.written, r.left, sock.reads])
""")
    assert got == ["ok", size, 150 - size, [size]]


def test_feed_from_returns_0_once_the_image_is_whole():
    got = mp(SLOTS + """
class Stream:
    def __init__(self):
        self.reads = []
    def readinto(self, mv):
        self.reads.append(len(mv))
        if not len(mv):
            raise OSError("asked for 0 bytes")
        mv[:len(mv)] = bytes(len(mv))
        return len(mv)
s = Stream()
w = otaslot.SlotWriter(Part(), 100)
out([w.feed_from(s), w.feed_from(s), w.feed_from(s), s.reads])
""")
    assert got == [100, 0, 0, [100]]
