# Heatshrink (LZSS) decoder with bounded buffers: the window (2**window_sz2 bytes) and a
# 10-word state; input comes from a buffered reader, output goes into the caller's buffer.
#
# The format (heatshrink by Scott Vokes, as detools uses it): a bit stream, most significant
# bit first. A 1 bit is followed by a literal byte (8 bits); a 0 bit by a back-reference:
# window_sz2 bits of offset - 1, then lookahead_sz2 bits of count - 1; the count bytes are
# copied from offset bytes back in the output (the copy may overlap what it writes). The
# window starts zeroed. The last byte is padded with 0 bits, too few for another item.

from array import array


class HeatshrinkError(Exception):
    pass


class Decoder:
    def __init__(self, reader, window_sz2, lookahead_sz2, kern):
        # reader: .buf, .pos, .end and .fill() (refill when pos == end, returns bytes
        # available, 0 at the end of the input); kern: deltaviper or deltaplain.
        if not 4 <= window_sz2 <= 15 or not 3 <= lookahead_sz2 < window_sz2:
            raise HeatshrinkError("bad heatshrink parameters: window %d bits, lookahead %d bits"
                                  % (window_sz2, lookahead_sz2))
        self.r = reader
        self.kern = kern
        self.win = bytearray(1 << window_sz2)
        self.st = array("i", [0, 0, 0, 0, 0, 0, 0, 0, window_sz2, lookahead_sz2])

    def readinto(self, buf):
        # Fill buf as far as the input goes; 0 at the end of the input.
        r, st = self.r, self.st
        mv = memoryview(buf)
        n = 0
        while n < len(mv):
            if r.pos == r.end and not r.fill():
                break
            st[0] = r.pos
            st[1] = r.end
            n += self.kern.hs_decode(st, r.buf, self.win, mv[n:])
            r.pos = st[0]
        return n
