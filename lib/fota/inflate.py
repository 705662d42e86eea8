# Compressed images ("bc_enc": "deflate"): the transferred file is the image cut into PIECE-byte
# pieces (the last one shorter), each compressed as its own zlib stream (RFC 1950), one after
# the other. MicroPython's deflate module inflates them while the image streams into the slot.
#
# Pieces are what make a resume possible: an inflater cannot start in the middle of a deflate
# stream, but it can start at any piece. Their offsets in the transferred file are learned as
# they pass (a zlib stream ends itself) and state(done) hands the one to resume from to the
# record; a broken connection or a power cut goes on from the piece that holds the slot's
# last whole sector, inflating and dropping what the slot already has. Cost: 0.1-0.9 % in size
# against one stream (measured by `fota build --compress`).
#
# Each piece must give exactly its bytes, end with a valid Adler-32, and the last one must end
# the file: more output (a decompression bomb), less, bad data or a file that ends early are
# InflateError (not retried); errors of the transport pass through (retried).
#
# RAM: DeflateIO reads its source one byte at a time (extmod/moddeflate.c,
# deflateio_read_stream) and allocates a window of 2**wbits bytes when it starts (never more
# than the document's wbits, even if a piece's zlib header asks for more) plus its state
# (uzlib_uncomp_t: two Huffman trees, about 1.3 KB). One piece at a time: 5.3 KB with wbits 12.

import gc
import io

import deflate

PIECE = 65536


class InflateError(Exception):
    pass


class _Counted(io.IOBase):
    # The transport as the stream DeflateIO reads, one byte a call: read ahead in a small
    # buffer, count the bytes taken, and tell the transport's errors (a broken connection)
    # from the inflater's (bad data).
    def __init__(self, r, at, buf):
        self.r = r
        self.at = at  # offset in the transferred file of the next byte taken
        self.buf = buf
        self.pos = self.end = 0
        self.failed = False

    def readinto(self, b):
        if self.pos >= self.end:
            try:
                self.end = self.r.readinto(self.buf)
            except Exception:
                self.failed = True
                raise
            self.pos = 0
            if not self.end:
                return 0
        b[0] = self.buf[self.pos]
        self.pos += 1
        self.at += 1
        return 1


class Inflater:
    def __init__(self, source, size, xsize, wbits, state=None):
        # source(start) -> transport stream from byte `start` of the transferred file;
        # size: the image; xsize: the transferred file; state: from state() before a power cut.
        self.source = source
        self.size = size
        self.total = size
        self.xsize = xsize
        self.wbits = wbits
        self.starts = {0: 0}  # piece -> its offset in the transferred file
        if isinstance(state, list) and len(state) == 2 and all(isinstance(x, int) for x in state):
            self.starts[state[0]] = state[1]  # else the download starts over, from piece 0
        self.one = bytearray(1)
        self.ahead = bytearray(256)
        self.src = self.d = None

    def state(self, done):
        k = done // PIECE
        return [k, self.starts[k]] if k in self.starts else None

    def open(self, start):
        # -> self, reading image bytes from image offset `start`.
        k = max(i for i in self.starts if i <= start // PIECE)
        r = self.source(self.starts[k])
        if r.total != self.xsize:
            r.close()
            raise InflateError("server has %d bytes, document says %d" % (r.total, self.xsize))
        self.src = _Counted(r, self.starts[k], self.ahead)
        self.piece = k
        self.out = k * PIECE  # image offset of the next byte inflated
        self.skip = start - self.out  # bytes the slot already has
        self.d = None
        return self

    def readinto(self, buf):
        mv = memoryview(buf)
        while True:
            if self.out >= self.size:
                return 0
            if self.d is None:
                gc.collect()  # the last piece's window goes before the next one is allocated
                self.d = deflate.DeflateIO(self.src, deflate.ZLIB, self.wbits)
            end = min((self.piece + 1) * PIECE, self.size)
            n = min(len(mv), end - self.out)
            if self.skip:
                n = min(n, self.skip)
            n = self._inflate(mv[:n])
            if not n:
                raise InflateError("piece %d ends at byte %d of the image, short of %d"
                                   % (self.piece, self.out, end))
            self.out += n
            if self.out == end:
                self._end_piece()
            if not self.skip:
                return n
            self.skip -= n

    def _end_piece(self):
        # The piece gave all its bytes: its stream must end here (checksum included).
        if self._inflate(self.one):
            raise InflateError("piece %d inflates past its %d bytes"
                               % (self.piece, self.out - self.piece * PIECE))
        self.d = None
        self.piece += 1
        self.starts[self.piece] = self.src.at
        if self.out >= self.size and self.src.at != self.xsize:
            raise InflateError("%d bytes after the last piece" % (self.xsize - self.src.at))

    def _inflate(self, mv):
        try:
            return self.d.readinto(mv)
        except EOFError:
            raise InflateError("compressed file ends in piece %d" % self.piece)
        except OSError:
            if self.src.failed:
                raise
            raise InflateError("piece %d is not valid zlib data" % self.piece)

    def close(self):
        self.d = None
        if self.src:
            self.src.r.close()
            self.src = None
