# Delta updates: a detools sequential patch, applied as it streams in, makes the new image
# from the running one. Patch(src, base, base_len) is an image stream (readinto, total,
# close) like an HTTPS response, so the slot writer takes it as it takes a download: the new
# image is made in the caller's buffer, a piece at a time, in bounded RAM (a 1 KB input
# buffer, a 4 KB buffer of decompressed patch data, the heatshrink window). The base is read
# from the running slot straight into the caller's buffer, and the diff bytes added there.
#
# The patch (detools "sequential" type, as `detools create_patch` makes it):
#   header   1 byte, not compressed: bit 7 zero, bits 6-4 the patch type (0 sequential),
#            bits 3-0 the compression (0 none, 2 crle, 4 heatshrink are applied here; 1 lzma,
#            3 bz2, 5 zstd, 6 lz4 are not)
#   to size  a size field, not compressed: the new image's length
#   then, compressed: a size field of data-format data (0 here: none is applied), then
#   entries until to size bytes are made, each
#     diff size, diff bytes: each added (mod 256) to the next byte of the base
#     extra size, extra bytes: copied as they are
#     adjustment: a signed size field moving the base pointer
#   and nothing after the last entry.
# A size field: first byte bit 7 "more", bit 6 sign, bits 5-0 the lowest bits; each further
# byte bit 7 "more", bits 6-0 the next bits. Heatshrink data starts with a byte holding
# window_sz2 - 4 (high nibble) and lookahead_sz2 - 3 (low nibble). CRLE data is segments: a
# kind byte (0 scattered: n bytes as they are; 1 repeated: one byte n times) and n as an
# unsigned LEB128 number.

from array import array

from fota import appimage
from fota import deltaplain
from fota import heatshrink

try:
    from fota import deltaviper as fast
except (SyntaxError, ValueError, ImportError, MemoryError) as e:
    # SyntaxError, ValueError, ImportError: a firmware built without the viper emitter.
    # MemoryError: no room for the machine code. On the ESP32 viper code goes to IRAM
    # (ports/esp32/main.c, esp_native_code_commit: heap_caps_malloc(MALLOC_CAP_EXEC), and
    # m_malloc_fail when that fails), which other native code may have filled.
    print("delta: viper unavailable (%s: %s): plain bytecode" % (type(e).__name__, e))
    fast = None
kern = fast or deltaplain  # the hot loops in use

MAX_WINDOW = 12  # largest heatshrink window this device takes: 2**12 = 4 KB of RAM
MAX_IMAGE = 1 << 24  # 16 MB, the largest ESP32 flash: an image and a base position within it
NAMES = ("none", "lzma", "crle", "bz2", "heatshrink", "zstd", "lz4")


class DeltaError(Exception):
    pass


def _size(byte):
    # A detools size field, read a byte at a time from byte().
    b = byte()
    v = b & 0x3F
    neg = b & 0x40
    shift = 6
    while b & 0x80:
        if shift > 34:
            raise DeltaError("size field too long in the patch")
        b = byte()
        v |= (b & 0x7F) << shift
        shift += 7
    return -v if neg else v


class Reader:
    # The patch as it comes: a buffer over the transport's readinto().
    def __init__(self, src, size=1024):
        self.src = src
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.pos = self.end = 0
        self.got = 0  # patch bytes read so far

    def fill(self):
        # Refill once the buffer is used up; bytes available, 0 at the end of the patch.
        if self.pos == self.end:
            self.pos = 0
            self.end = self.src.readinto(self.buf)
            self.got += self.end
        return self.end - self.pos

    def byte(self):
        if not self.fill():
            raise DeltaError("patch ends early, after %d bytes" % self.got)
        self.pos += 1
        return self.buf[self.pos - 1]

    def readinto(self, buf):
        k = min(len(buf), self.fill())
        buf[:k] = self.mv[self.pos:self.pos + k]
        self.pos += k
        return k


class Crle:
    # CRLE decompression: scattered segments copied, repeated ones filled.
    def __init__(self, reader):
        self.r = reader
        self.left = 0  # bytes left in the current segment
        self.rep = -1  # the repeated byte, or -1 in a scattered segment

    def readinto(self, buf):
        mv = memoryview(buf)
        n = 0
        while n < len(mv):
            if not self.left:
                if not self.r.fill():
                    break
                kind = self.r.byte()
                if kind > 1:
                    raise DeltaError("bad crle segment kind %d" % kind)
                self.left = self._uleb()
                self.rep = self.r.byte() if kind else -1
                continue
            k = min(self.left, len(mv) - n)
            if self.rep < 0:
                k = self.r.readinto(mv[n:n + k])
                if not k:
                    raise DeltaError("patch ends early, after %d bytes" % self.r.got)
            else:
                mv[n] = self.rep
                j = 1
                while j < k:  # doubling copies: no per-byte loop, no allocation
                    c = min(j, k - j)
                    mv[n + j:n + j + c] = mv[n:n + c]
                    j += c
            n += k
            self.left -= k
        return n

    def _uleb(self):
        v = shift = 0
        while True:
            b = self.r.byte()
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 35:
                raise DeltaError("size field too long in the patch")


class Patch:
    # The entries are taken apart by kern.entries (deltaviper or deltaplain), a buffer of them
    # a call; it comes back here to read the base, to refill the patch data, and for a size
    # field it leaves to _next (one that runs past the data in dbuf or is longer than 4
    # bytes). Their state, self.st (array "i"): 0 position in dbuf, 1 end of the data in dbuf,
    # 2 position in the caller's buffer, 3 part (0 diff, 1 extra, 2 between entries: a diff
    # size next), 4 bytes left of the part, 5 bytes of the image not yet in any part, 6 the
    # position in the base plus MAX_IMAGE (never negative: viper loads it as unsigned),
    # 7 base bytes read for a diff, 8 a part's size refused.

    def __init__(self, src, base, base_len, max_window=MAX_WINDOW, dbuf=None):
        # src: the patch stream (readinto, close); base: the running slot's Partition;
        # base_len: the length of the image in it (appimage.length); dbuf: a 4096-byte buffer
        # for decompressed patch data (made here if not given). Reads the header.
        self.src = src
        self.r = r = Reader(src)
        head = r.byte()
        if head >> 4:
            raise DeltaError("not a detools sequential patch (type %d)" % (head >> 4 & 7))
        comp = head & 15
        name = NAMES[comp] if comp < len(NAMES) else str(comp)
        self.total = _size(r.byte)
        if self.total <= 0:
            raise DeltaError("patch makes an empty image")
        if self.total > MAX_IMAGE:
            raise DeltaError("patch makes %d bytes, more than an image can have (%d)"
                             % (self.total, MAX_IMAGE))
        if comp == 0:
            self.z = r
        elif comp == 2:
            self.z = Crle(r)
        elif comp == 4:
            b = r.byte()
            wb, lb = (b >> 4) + 4, (b & 15) + 3
            if wb > max_window:
                raise DeltaError("heatshrink window of 2**%d bytes is larger than this device "
                                 "allows (2**%d)" % (wb, max_window))
            try:
                self.z = heatshrink.Decoder(r, wb, lb, kern)
            except heatshrink.HeatshrinkError as e:
                raise DeltaError(str(e))
        else:
            raise DeltaError("patch compression %s is not supported (none, crle, heatshrink)" % name)
        self.compression = name
        self.base = base
        self.blen = base_len
        self.bs = base.ioctl(5, 0)
        self.dbuf = dbuf or bytearray(4096)  # decompressed patch data
        self.dmv = memoryview(self.dbuf)
        self.st = array("i", (0, 0, 0, 2, 0, self.total, MAX_IMAGE, 0, 0))
        self.done = False
        if _size(self._byte):
            raise DeltaError("data-format patches are not supported")

    def _more(self):
        # Decompress the next piece of the patch into dbuf.
        st = self.st
        st[0] = 0
        st[1] = self.z.readinto(self.dbuf)
        if not st[1]:
            raise DeltaError("patch data (%s) ends early: %d of %d bytes made, after %d patch "
                             "bytes" % (self.compression, self.total - st[5] - st[4], self.total,
                                        self.r.got))

    def _byte(self):
        st = self.st
        if st[0] == st[1]:
            self._more()
        st[0] += 1
        return self.dbuf[st[0] - 1]

    def _next(self):
        # The size field after the current part, as kern.entries reads it, a byte at a time.
        st = self.st
        n = _size(self._byte)
        if st[3] == 1:  # the adjustment
            f = st[6] + n
            if not 0 <= f <= 2 * MAX_IMAGE:
                raise DeltaError("patch moves to byte %d of the %d-byte base image"
                                 % (f - MAX_IMAGE, self.blen))
            st[6] = f
            st[3] = 2
            if not st[5]:
                self._end()
            return
        if n < 0 or n > st[5]:
            self._past(n)
        st[3] = 1 if st[3] == 0 else 0
        st[4] = n
        st[5] -= n

    def _past(self, n):
        raise DeltaError("patch %s data of %d bytes runs past the %d bytes the patch makes"
                         % ("extra" if self.st[3] == 0 else "diff", n, self.total))

    def _end(self):
        self.done = True
        if self.st[0] < self.st[1] or self.z.readinto(self.dmv[:1]):
            raise DeltaError("patch has data after its end (%d patch bytes read)" % self.r.got)

    def readinto(self, buf):
        # Make the next bytes of the new image into buf; 0 once it is whole.
        mv = memoryview(buf)
        st, dbuf, bs = self.st, self.dbuf, self.bs
        entries, read = kern.entries, self.base.readblocks  # a lookup a call, not an entry
        st[2] = 0
        while not self.done:
            k = entries(st, dbuf, mv)
            if k > 0:  # a diff of k bytes: its base bytes into buf, where it adds them
                f = st[6] - MAX_IMAGE
                if f < 0 or f + k > self.blen:
                    raise DeltaError("patch reads bytes %d-%d of the %d-byte base image"
                                     % (f, f + k, self.blen))
                n = st[2]
                read(f // bs, mv[n:n + k], f % bs)
            elif k == 0:  # buf is full
                break
            elif k == -1:
                self._more()
            elif k == -2:
                self._next()
            elif k == -3:
                self._end()
            else:
                self._past(st[8])
        return st[2]

    def close(self):
        self.src.close()


class Patcher:
    # The delta codec of the FOTA flow (fota/install.py: _image): open(start) -> the new image as a
    # stream from image offset `start`. A sequential patch cannot start in the middle, so a
    # resume (a broken connection, a power cut) fetches the patch again from its first byte
    # and drops the image bytes the slot already has: it costs the download, not flash work.
    def __init__(self, source, base, size, xsize):
        # source(start): the transport of the patch file (xsize bytes); base: the running
        # slot; size: the image length the document gives.
        self.source = source
        self.base = base
        self.blen = appimage.length(base)[0]
        self.size = size
        self.xsize = xsize
        self.p = None
        # made now, with the update's other buffers, while the heap is in one piece; each
        # open (a resume) uses it again
        self.dbuf = bytearray(4096)

    def state(self, done):
        return None  # nothing to record: a resume starts the patch over

    def open(self, start):
        r = self.source(0)
        try:
            if r.total != self.xsize:
                raise DeltaError("server has %d bytes, document says %d" % (r.total, self.xsize))
            p = Patch(r, self.base, self.blen, dbuf=self.dbuf)
            if p.total != self.size:
                raise DeltaError("patch makes %d bytes, document says %d" % (p.total, self.size))
            self.p = p
            self.total = p.total
            self._skip(start)
        except Exception:
            r.close()
            raise
        return self

    def _skip(self, n):
        # Make and drop the first n bytes (already in the slot).
        buf = bytearray(512)
        while n:
            k = self.p.readinto(memoryview(buf)[:min(n, 512)])
            if not k:
                raise DeltaError("patch ends before byte %d" % n)
            n -= k

    def readinto(self, buf):
        return self.p.readinto(buf)

    def close(self):
        if self.p:
            self.p.close()
            self.p = None
