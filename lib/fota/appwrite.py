# Writing an application slot (apps.py says what the slots are): a ROMFS image goes into one
# half of the ROMFS partition (RomWriter: otaslot's sector writer, then the image walked where
# it is) or is unpacked into a folder as it downloads (FolderWriter). Either way each file is
# looked at before the slot is switched to (Seen): .mpy headers against the running VM, an
# `app` module at the top, the VERSION file.

import os

from fota import otaslot
from fota import romimage
from fota.romimage import ImageError

SECTOR = 4096


class Seen:
    # What an image's files say before it is kept: each .mpy header, app present, VERSION.
    def __init__(self):
        self.has_app = False
        self.version = None

    def file(self, name, head):
        # head: the file's first bytes (32 of them, or all if fewer).
        if name in ("app.mpy", "app.py"):
            self.has_app = True
        if name.endswith(".mpy"):
            romimage.check_mpy(name, head)
        elif name == "VERSION":
            v = bytes(head).decode().strip() if len(head) <= 31 else ""
            if not v:
                raise ImageError("VERSION must be 1 to 31 characters")
            self.version = v

    def done(self):
        # -> the image's own version (its VERSION file), or None.
        if not self.has_app:
            raise ImageError("no app.mpy or app.py at the top of the image")
        return self.version


class Half:
    # One half of the ROMFS partition as a partition of its own (blocks from its start), for
    # otaslot.SlotWriter: readblocks, writeblocks, ioctl 4/6, info.
    def __init__(self, seg, slot, half):
        self.seg = seg
        self.count = half // SECTOR
        self.first = slot * self.count

    def info(self):
        i = self.seg.info()
        return (i[0], i[1], i[2] + self.first * SECTOR, self.count * SECTOR, i[4], i[5])

    def readblocks(self, block, buf, offset=0):
        self.seg.readblocks(self.first + block, buf, offset)

    def writeblocks(self, block, buf):
        self.seg.writeblocks(self.first + block, buf)  # erases the covered sectors first

    def ioctl(self, op, arg):
        if op == 4:
            return self.count
        if op == 6:
            return self.seg.ioctl(6, self.first + arg)
        return self.seg.ioctl(op, arg)


class RomWriter(otaslot.SlotWriter):
    # otaslot's sector writer (read-back, resume, abort) into one ROMFS half; finish() then
    # walks the image where it is, in the memory map, for its .mpy headers and VERSION.
    FIRMWARE = False  # a ROMFS image, not an app image

    def __init__(self, seg, slot, half, size, start, sha256):
        super().__init__(Half(seg, slot, half), size, start, sha256)
        self.view = memoryview(seg)[slot * half:(slot + 1) * half]
        self.pos = 0

    def _read(self, mv):
        n = len(mv)
        mv[:] = self.view[self.pos:self.pos + n]
        self.pos += n
        return n

    def finish(self, md5_hex):
        self.finish_data(md5_hex)
        self.pos = 0
        seen = Seen()
        rd = romimage.Reader(self._read, bytearray(64))
        head = memoryview(self.check)[:32]
        for kind, name, n in romimage.walk(rd, self.size):
            if kind == romimage.FILE:
                k = min(n, 32)
                rd.exact(head[:k])
                seen.file(name, head[:k])
                rd.skip(n - k)
        return seen.done()


# --- the folders route ------------------------------------------------------------------

class FolderWriter:
    # Unpacks a ROMFS image into a folder as it streams in: the interface of
    # otaslot.SlotWriter (restart, feed_from, finish, abort), with no resume: a broken
    # download starts the folder over.
    def __init__(self, path, size, sha256=False, tick=None):
        import hashlib

        self.hashlib = hashlib
        self.path = path
        self.size = size
        self.use_sha = sha256
        self.tick = tick
        self.buf = bytearray(1024)
        self.scratch = bytearray(64)
        self.sector = 0  # nothing is kept over a power cut: no progress to record
        self.touched = False
        self.restart()

    def restart(self):
        self.written = 0
        self.md5 = self.hashlib.md5()
        self.sha = self.hashlib.sha256() if self.use_sha else None
        self.seen = Seen()
        if self.touched:
            rmtree(self.path)
        return 0

    def _read(self, mv):
        n = self.stream.readinto(mv)
        if n:
            self.md5.update(mv[:n])
            if self.sha:
                self.sha.update(mv[:n])
        return n

    def feed_from(self, stream):
        # The whole image in one call (a broken stream raises: the caller restarts).
        self.stream = stream
        rd = romimage.Reader(self._read, self.scratch)
        self.touched = True
        rmtree(self.path)
        self._mkdir(self.path)
        for kind, name, n in romimage.walk(rd, self.size):
            if kind == romimage.DIR:
                self._mkdir(self.path + "/" + name)
            else:
                self._file(rd, name, n)
            if self.tick:
                self.tick()
        self.written = rd.pos
        self.stream = None
        return rd.pos

    def _file(self, rd, name, n):
        mv = memoryview(self.buf)
        try:
            f = open(self.path + "/" + name, "wb")
        except OSError as e:
            raise ImageError("cannot write %s: %s" % (name, e))
        with f:
            first = True
            while n or first:
                k = min(n, len(mv))
                rd.exact(mv[:k])
                if first:
                    self.seen.file(name, mv[:min(k, 32)])
                    first = False
                try:
                    f.write(mv[:k])
                except OSError as e:
                    raise ImageError("cannot write %s: %s" % (name, e))
                n -= k

    def _mkdir(self, path):
        try:
            os.mkdir(path)
        except OSError as e:
            raise ImageError("cannot make %s: %s" % (path, e))

    def finish(self, md5_hex):
        # -> the image's own version (its VERSION file), or None.
        import binascii

        if self.written != self.size:
            raise ImageError("short image: %d of %d bytes" % (self.written, self.size))
        digest = binascii.hexlify(self.md5.digest()).decode()
        if md5_hex is not None and digest != md5_hex.lower():
            raise ImageError("MD5 mismatch: image %s, document %s" % (digest, md5_hex))
        return self.seen.done()

    def abort(self):
        if self.touched:
            rmtree(self.path)


def du(path, block):
    # Bytes a folder's files hold on the filesystem, in whole blocks.
    total = 0
    try:
        for e in os.ilistdir(path):
            p = path + "/" + e[0]
            if e[1] == 0x4000:
                total += du(p, block) + block
            else:
                total += (os.stat(p)[6] + block - 1) // block * block
    except OSError:
        pass
    return total


def rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for e in entries:
        p = path + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)
