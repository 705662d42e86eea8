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
# InflateError (not retried); errors of the transport pass through (retried), once the bytes
# that came before them are inflated.
#
# Speed: DeflateIO reads its source one byte at a time (extmod/moddeflate.c,
# deflateio_read_stream, through the stream protocol); from a Python stream that is a Python
# call per compressed byte (py/modio.c, iobase_read): 6.5x the time DeflateIO takes on an
# io.BytesIO of the whole file (make bench). So it reads an io.BytesIO (C, no Python call)
# holding AHEAD bytes of the file, refilled from the transport between calls of the inflater:
# 1.07x. The inflater stops at once when the BytesIO has
# nothing more (EOFError out of the middle of a Huffman code: it cannot go on), so it must
# never get there: it is asked for at most STEP image bytes at a time, within one STEP-aligned
# span of its piece, and the buffer holds at least LOW compressed bytes before each call.
# STEP image bytes take at most about 2 * STEP of deflate data (a Huffman code is at most 15
# bits, a match of 3 bytes or more at most 45), plus a block header (a dynamic one is under
# 300 bytes, and zlib starts a block every 16383 symbols or more) and the stream's 6 bytes of
# header and checksum: LOW = 2 * STEP + 512. `fota build --compress` checks every span of
# every piece against LOW (fotatools.release.inflate_pieces); a file made otherwise that needs
# more fails here with its reason. The inflater stops exactly after a stream's checksum (uzlib
# takes a byte only when it needs its bits, and the checksum's four after the last block:
# lib/uzlib/tinflate.c, tinf_getbit and uzlib_uncompress_chksum), so the BytesIO's position
# is where the next piece starts.
#
# RAM: the window of 2**wbits bytes DeflateIO allocates when a piece starts (never more than
# the document's wbits, even if a piece's zlib header asks for more) and its state
# (uzlib_uncomp_t: two Huffman trees, about 1.3 KB), one piece at a time; the BytesIO (AHEAD
# bytes) and the buffer it is refilled through (LOW bytes): about 12 KB with wbits 12.

import gc
import io

import deflate

PIECE = 65536
STEP = 1024  # image bytes asked of the inflater at once, within one STEP-aligned span
LOW = 2 * STEP + 512  # compressed bytes held for it at least (until the file has no more)
AHEAD = 4096  # compressed bytes held when the buffer is refilled


class InflateError(Exception):
    pass


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
        self.bio = io.BytesIO(AHEAD)  # what the inflater reads: an empty BytesIO of AHEAD bytes
        self.stage = memoryview(bytearray(LOW))  # its refills pass through here
        self.r = self.d = None

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
        self.r = r
        self.at = self.starts[k]  # offset in the transferred file of the BytesIO's first byte
        self.held = 0  # bytes of the file the BytesIO holds
        self.eof = False  # no more bytes come: the file has ended, or the transport broke
        self.broken = None  # the transport's error, raised once the bytes it gave are used up
        self.bio.seek(0)
        self.piece = k
        self.out = k * PIECE  # image offset of the next byte inflated
        self.skip = start - self.out  # bytes the slot already has
        self.d = None
        return self

    def readinto(self, buf):
        mv = memoryview(buf)
        got = 0
        while got < len(mv) and self.out < self.size:
            if self.d is None:
                gc.collect()  # the last piece's window goes before the next one is allocated
                self.d = deflate.DeflateIO(self.bio, deflate.ZLIB, self.wbits)
            end = min((self.piece + 1) * PIECE, self.size)
            n = min(len(mv) - got, end - self.out, STEP - self.out % STEP)
            if self.skip:
                n = min(n, self.skip)
            n = self._inflate(mv[got:got + n])
            if not n:
                raise InflateError("piece %d ends at byte %d of the image, short of %d"
                                   % (self.piece, self.out, end))
            self.out += n
            if self.out == end:
                self._end_piece()
            if self.skip:
                self.skip -= n  # dropped: the next bytes go over them
            else:
                got += n
        return got

    def _end_piece(self):
        # The piece gave all its bytes: its stream must end here (checksum included).
        if self._inflate(self.one):
            raise InflateError("piece %d inflates past its %d bytes"
                               % (self.piece, self.out - self.piece * PIECE))
        self.d = None
        self.piece += 1
        at = self.starts[self.piece] = self.at + self.bio.tell()
        if self.out >= self.size and at != self.xsize:
            raise InflateError("%d bytes after the last piece" % (self.xsize - at))

    def _inflate(self, mv):
        ahead = self._fill()
        try:
            n = self.d.readinto(mv)
        except EOFError:  # it ran out of the BytesIO
            n = None
        except OSError:  # the BytesIO never fails: the data is bad
            n = -1
        if n is None or self.eof and self.bio.tell() > self.held:  # past the bytes it has
            if self.broken:
                raise self.broken
            if self.eof:
                raise InflateError("compressed file ends in piece %d" % self.piece)
            raise InflateError("piece %d takes more than %d compressed bytes for %d image bytes"
                               % (self.piece, ahead, len(mv)))
        if n < 0:
            raise InflateError("piece %d is not valid zlib data" % self.piece)
        return n

    def _fill(self):
        # At least LOW compressed bytes ahead of the inflater, or all the file has left: what
        # it has not taken goes to the front, the transport's next bytes after it. An error of
        # the transport waits until the inflater needs bytes that did not come: a piece that
        # came whole is inflated, and a resume starts at the next one. -> the bytes ahead.
        b = self.bio
        pos = b.tell()
        k = self.held - pos
        if k >= LOW or self.eof:
            return k
        st = self.stage
        b.readinto(st[:k])
        b.seek(0)
        b.write(st[:k])
        self.at += pos
        while k < AHEAD:
            try:
                n = self.r.readinto(st[:min(LOW, AHEAD - k)])
            except Exception as e:
                self.broken = e
                n = 0
            if not n:
                self.eof = True
                break
            b.write(st[:n])
            k += n
        self.held = k
        b.seek(0)
        return k

    def close(self):
        self.d = None
        if self.r:
            self.r.close()
            self.r = None
