# ROMFS images read front to back, from any stream: the application release format.
#
# An application release is a ROMFS image (MicroPython's read-only filesystem, built from the
# application's folder by mpremote's writer, .py compiled to .mpy). The format, as
# extmod/vfs_rom.c defines it: records of (kind, length, payload), kind and length as varuints
# (big-endian 7 bits a byte, high bit = more follows). The image is one record of kind
# 0x14a6b1 (bytes d2 cd 31) whose payload holds the top folder's records:
#   2 verbatim data, 3 pointer to data (not written by mpremote: refused here),
#   4 folder (name length, name, its records), 5 file (name length, name, its records: the
#   file's data is its first data record), 0 corrupt, anything else skipped.
# walk() yields each folder and file as it comes, so that an image can be checked or unpacked
# while it downloads, with no more than one small buffer in RAM.

import sys

MAGIC = b"\xd2\xcd\x31"
DIR, FILE = 4, 5
MAX_NAME = 64
ARCHS = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
         "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


class ImageError(Exception):
    pass


class Reader:
    # Exact reads from read(mv) -> n (0 at the end), counting the position.
    def __init__(self, read, scratch):
        self.read = read
        self.pos = 0
        self.scratch = scratch  # for skipped bytes
        self.one = bytearray(1)

    def exact(self, mv):
        mv = memoryview(mv)  # a slice of a bytearray would be a copy
        got = 0
        while got < len(mv):
            n = self.read(mv[got:])
            if not n:
                raise ImageError("image ends early, at byte %d" % (self.pos + got))
            got += n
        self.pos += got

    def byte(self):
        self.exact(self.one)
        return self.one[0]

    def uint(self):
        v = 0
        for _ in range(5):  # 35 bits: more than any flash
            b = self.byte()
            v = (v << 7) | (b & 0x7F)
            if not b & 0x80:
                return v
        raise ImageError("varuint too long at byte %d" % self.pos)

    def skip(self, n):
        mv = memoryview(self.scratch)
        while n > 0:
            k = min(n, len(mv))
            self.exact(mv[:k])
            n -= k


def walk(rd, size):
    # Yields (DIR, path, 0) and (FILE, path, n) in image order; after a FILE the caller reads
    # its n bytes of data from rd (exactly those) before asking for the next entry.
    # ImageError if the image is not a ROMFS image of `size` bytes or is damaged.
    head = memoryview(rd.scratch)[:3]
    rd.exact(head)
    if bytes(head) != MAGIC:
        raise ImageError("not a ROMFS image")
    end = rd.uint()
    end += rd.pos
    if end != size:
        raise ImageError("ROMFS image of %d bytes, the document says %d" % (end, size))
    ends = [end]
    paths = [""]
    while True:
        while ends and rd.pos == ends[-1]:
            ends.pop()
            paths.pop()
        if not ends:
            return
        kind = rd.uint()
        stop = rd.uint() + rd.pos
        if stop > ends[-1]:
            raise ImageError("record at byte %d runs past its folder" % rd.pos)
        if kind == DIR or kind == FILE:
            path = paths[-1] + _name(rd, stop)
            if kind == DIR:
                yield DIR, path, 0
                ends.append(stop)
                paths.append(path + "/")
                continue
            n = _data(rd, stop, path)
            yield FILE, path, n
            rd.skip(stop - rd.pos)  # metadata after the data, if any
        elif kind == 0:
            raise ImageError("corrupt record at byte %d" % rd.pos)
        else:
            rd.skip(stop - rd.pos)  # padding, or a kind this reader does not know


def _name(rd, stop):
    n = rd.uint()
    if not 0 < n <= MAX_NAME or rd.pos + n > stop:
        raise ImageError("bad name length %d at byte %d" % (n, rd.pos))
    b = memoryview(rd.scratch)[:n]
    rd.exact(b)
    name = bytes(b)
    if name in (b".", b"..") or any(c < 33 or c > 126 or c == 47 for c in name):
        raise ImageError("bad name %r" % name)
    return name.decode()


def _data(rd, stop, path):
    # Skip to the file's data record; -> its length (the data comes next).
    while rd.pos < stop:
        kind = rd.uint()
        n = rd.uint()
        if rd.pos + n > stop:
            raise ImageError("%s: data runs past its file" % path)
        if kind == 2:
            return n
        if kind == 3:
            raise ImageError("%s: data pointer records are not supported" % path)
        if kind == 0:
            raise ImageError("%s: corrupt record" % path)
        rd.skip(n)
    raise ImageError("%s has no data" % path)


def check_mpy(path, head):
    # A .mpy file's 4-byte header against the running VM (py/persistentcode.c): magic 'M', the
    # bytecode version; native code only for this VM's architecture and sub-version.
    mine = getattr(sys.implementation, "_mpy", None)
    if mine is None:
        raise ImageError("%s: this firmware cannot load .mpy files" % path)
    if len(head) < 4 or head[0] != 77:  # 'M'
        raise ImageError("%s is not a .mpy file" % path)
    if head[1] != mine & 0xFF:
        raise ImageError("%s: bytecode version %d, this firmware runs %d" % (path, head[1], mine & 0xFF))
    arch = head[2] >> 2
    feat = mine >> 8
    if arch and (arch != feat >> 2 or head[2] & 3 != feat & 3):
        raise ImageError("%s: native code for %s.%d, this firmware runs %s.%d" % (
            path, _arch(arch), head[2] & 3, _arch(feat >> 2), feat & 3))


def _arch(n):
    return ARCHS[n] if n < len(ARCHS) else "arch %d" % n
