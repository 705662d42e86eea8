# Where the files of a job go, by file id. File 0 is this ESP32's own firmware (fota/flow.py's
# slot writer); the application says what the others are:
#
#     fota.targets[1] = target.SmpTarget(machine.UART(1, 115200, tx=17, rx=16))
#     fota.targets[2] = target.FileTarget("/sd/fpga.bit")
#
# A target follows the life cycle of the FreeRTOS OTA platform layer (create file for
# receive, write block, close file, activate new image, get/set platform image state):
#
#   create(f)          get ready for file f (fota.plan.OtaFile); resume: the offset the
#                      target last confirmed, or 0
#   write(pos, data)   the next bytes of the file, in order from 0 (bytes the target already
#                      holds are passed too: it skips them) -> bytes it holds for sure
#   close()            all bytes written: the target's own checks -> the new version
#   abort()            the update failed before activate: nothing half-made is left in use
#   activate(f, v)     put version v of file f in use (a secondary: set it for one test
#                      boot and reset); done again after a power cut, it finishes what is left
#   state(f)           -> (version in use, True while on trial); a secondary once it is back
#   confirm(f)         make the version on trial permanent
#   feed               an attribute: the files step sets it to the watchdog's feed before it
#                      calls the target; a target that waits for a peer calls it in every wait
#
# fota/files.py checks each file's signature (SHA-256 over every byte written) between close()
# and activate(), and calls the job done only when state() reports the new version.

import hashlib
import os
import struct
import time

from fota.plan import NAME_MAX, control, last, quoted


smp = None  # fota.smp, once an SmpTarget is made


class TargetError(Exception):
    pass


STAGE = ".new"  # a file target's new file, until it is checked and renamed over the old one


def _nothing():
    pass


class FileTarget:
    # A file on the filesystem (flash or a mounted SD card): written under path + ".new",
    # checked, then renamed over the old one in one step, so that a power cut leaves the old
    # file or the new one, never a mix. path: where it goes; folder: the document's filepath
    # (its last part) within this folder instead. A name that is no name (see where()) is
    # refused before any file is opened: a failed job leaves the old file as it was.
    def __init__(self, path=None, folder=None):
        self.fixed = path
        self.folder = folder
        self.path = path
        self.f = None
        self.feed = _nothing

    def where(self, f):
        # The file for f: the target's own path, or the last part of f's filepath in its
        # folder, a name the filesystem keeps as it is, ".new" included (fota/plan.py).
        if self.fixed is None:
            self.path = None  # abort() then touches no file
            name = last(f.path or "")
            if not name or name in (".", ".."):
                raise TargetError("filepath %s names no file" % quoted(f.path or ""))
            n = len(name.encode())
            if n + len(STAGE) > NAME_MAX:
                raise TargetError("filepath names a file of %d bytes; with %s the filesystem takes %d at most"
                                  % (n, STAGE, NAME_MAX - len(STAGE)))
            if control(name):
                raise TargetError("filepath %s holds a control character" % quoted(f.path))
            self.path = self.folder.rstrip("/") + "/" + name
        return self.path

    def create(self, f, resume=0):
        self.where(f)
        self.size = f.size
        self.n = 0
        try:
            self.f = open(self.path + STAGE, "wb")
        except OSError as e:
            raise TargetError("cannot write %s.new: %s" % (self.path, e))
        return 0  # a staged file is written again from its start

    def write(self, pos, data):
        self.n += self.f.write(data)
        return 0

    def close(self):
        self.f.close()
        self.f = None
        size = os.stat(self.path + STAGE)[6]
        if size != self.size or self.n != self.size:
            raise TargetError("%d bytes stored of %d written, the file has %d" % (size, self.n, self.size))
        return _digest(self.path + STAGE)

    def abort(self):
        if self.f:
            self.f.close()
            self.f = None
        if self.path is None:
            return  # refused before a file was named
        try:
            os.remove(self.path + STAGE)
        except OSError:
            pass

    def activate(self, f, version):
        new = self.where(f) + STAGE
        try:
            os.stat(new)
        except OSError:
            return  # renamed already
        os.rename(new, self.path)  # replaces the old file in one step

    def state(self, f):
        try:
            return _digest(self.where(f)), False
        except OSError:
            return None, False

    def confirm(self, f):
        pass


def _digest(path):
    # A file's version: the start of its SHA-256, read back from the filesystem.
    h = hashlib.sha256()
    buf = bytearray(512)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(memoryview(buf)[:n])
    return "sha256:" + "".join("%02x" % b for b in h.digest()[:8])


# --- a secondary MCU with MCUboot, over SMP on a UART ------------------------------------------

MCUBOOT_MAGIC = 0x96F3B83D
HEADER = 32  # struct image_header
CHUNK = 256  # upload bytes per request when the MCU does not say its buffer size
OVERHEAD = 64  # SMP header and the CBOR around the data of an upload request
RESET_MS = 1000  # from the answer to a reset request to the reset itself, at most
BOOT_MS = 20000  # how long the MCU may take to reset, swap and answer again
SHORT = 8  # upload answers per upload that may take less than half of what was sent


def mcuboot_version(head):
    # The version of an MCUboot image from its header (ih_ver), as SMP's image state prints
    # it: major.minor.revision, and .build when build is not 0.
    magic, = struct.unpack_from("<I", head, 0)
    if magic != MCUBOOT_MAGIC:
        raise TargetError("not an MCUboot image (header magic %08x)" % magic)
    major, minor, rev, build = struct.unpack_from("<BBHI", head, 20)
    v = "%d.%d.%d" % (major, minor, rev)
    return v + ".%d" % build if build else v


class SmpTarget:
    # A secondary MCU running MCUboot and an SMP server on a serial line: the image goes to
    # its secondary slot (image upload, resumed at the offset the MCU reports), is marked
    # for one test boot (image state write), the MCU resets and MCUboot swaps it in; the
    # version it then runs is read back and only then confirmed. name: what the reasons call
    # it ("secondary: no answer to image state in 3000 ms").
    #
    # Every wait has its bounds: each request waits timeout_ms for its answer, TRIES times
    # (fota/smp.py), feeding the watchdog; an upload answer that takes less than half of the
    # bytes sent is short, and more than SHORT of them end the upload (an MCU that takes a
    # byte per answer would need a request per byte); after its reset the MCU has boot_ms.
    def __init__(self, uart, timeout_ms=3000, boot_ms=BOOT_MS, reset_ms=RESET_MS, name="secondary"):
        global smp
        from fota import smp  # only boards with a secondary load SMP and CBOR

        self.smp = smp.Smp(uart, timeout_ms, self._feed)
        self.name = name
        self.feed = _nothing
        self.boot_ms = boot_ms
        self.reset_ms = reset_ms
        self.buf = None
        self.off = self.size = 0

    def _feed(self):
        self.feed()

    def _error(self, e):
        # An SMP failure as the target's, named.
        return TargetError("%s: %s" % (self.name, e))

    def create(self, f, resume=0):
        try:
            return self._create(f, resume)
        except smp.SmpError as e:
            raise self._error(e)

    def _create(self, f, resume):
        self.off = self.size = 0  # nothing of this file on the MCU yet (see abort)
        self.old = self._running()[0]  # also: the MCU answers
        self.short = 0  # upload answers that took less than half of what was sent
        n = self.smp.params()
        chunk = min(n, smp.MTU) - OVERHEAD if n and n > 2 * OVERHEAD else CHUNK
        self.buf = bytearray(chunk)
        self.fill = 0  # bytes in buf, for offset self.off
        self.size = f.size
        self.head = bytearray(HEADER)
        self.new = None  # the image's version, from its header
        self.off = 0  # the next byte the MCU wants
        if resume:  # an upload cut short: ask the MCU where it stands (no data)
            try:
                self.off = min(self.smp.upload(resume, b"", f.size), f.size)
            except smp.SmpError:
                self.off = 0  # it has no upload in progress: a new one starts at 0
        return self.off

    def write(self, pos, data):
        # -> the bytes the MCU holds for sure (its offset): the point to resume from.
        if pos < HEADER:
            n = min(HEADER - pos, len(data))
            self.head[pos:pos + n] = data[:n]
        i = 0
        while i < len(data):
            have = self.off + self.fill  # bytes before this one are on the MCU or in buf
            if pos + i < have:
                i = min(have - pos, len(data))
                continue
            n = min(len(data) - i, len(self.buf) - self.fill)
            self.buf[self.fill:self.fill + n] = data[i:i + n]
            self.fill += n
            i += n
            if self.fill == len(self.buf) or self.off + self.fill == self.size:
                self._send()
        return self.off

    def _admit(self):
        # Once the header is in, before a byte is sent: an MCUboot image, newer than the MCU's.
        if self.new is None:
            self.new = mcuboot_version(self.head)
            if _vkey(self.new) <= _vkey(self.old or "0"):
                raise TargetError("version %s is not newer than the MCU's %s" % (self.new, self.old))

    def _send(self):
        self._admit()
        sent = self.off
        try:
            off = self.smp.upload(sent, memoryview(self.buf)[:self.fill], self.size)
        except smp.SmpError as e:
            raise TargetError("%s at byte %d of %d: %s" % (self.name, sent, self.size, e))
        if off == sent:
            raise TargetError("%s took no bytes at byte %d of %d" % (self.name, sent, self.size))
        if off < sent:
            if off == 0 and sent + self.fill == self.size:
                # The last chunk again, its first answer lost: an MCU that had it all has ended
                # the upload and forgotten it (Zephyr's img_mgmt_reset_upload), and answers 0.
                # close() asks it whether its secondary slot holds the image.
                self.off, self.fill = self.size, 0
                return
            raise TargetError("%s went back to byte %d of the upload (did it reset?)" % (self.name, off))
        if off > self.size:
            raise TargetError("%s reports byte %d of a %d-byte image" % (self.name, off, self.size))
        done = min(off - sent, self.fill)  # bytes of buf the MCU took
        if 2 * done < self.fill:
            self.short += 1
            if self.short > SHORT:
                raise TargetError("%s took %d of %d bytes per answer at byte %d of %d, %d times: too slow"
                                  % (self.name, done, self.fill, off, self.size, self.short))
        self.buf[:self.fill - done] = self.buf[done:self.fill]
        self.fill -= done
        self.off = sent + done
        if off > self.off:  # the MCU is further on: skip to there
            self.fill = 0
            self.off = off

    def close(self):
        while self.fill:
            self._send()
        if self.off != self.size:
            raise TargetError("%s has %d of %d bytes" % (self.name, self.off, self.size))
        self.buf = None
        self._admit()
        try:
            self._slot1(self.new)
        except smp.SmpError as e:
            raise self._error(e)
        return self.new

    def _slot1(self, version):
        # The hash of image `version` in the secondary slot (what image state write names).
        for im in self.smp.images():
            if im.get("slot") == 1 and im.get("version") == version and isinstance(im.get("hash"), bytes):
                return im["hash"]
        raise TargetError("%s does not list image %s in its secondary slot" % (self.name, version))

    def abort(self):
        # A whole image refused here (signature, version) is erased from the secondary slot;
        # best effort: MCUboot never boots it unless it is set for test. Nothing is asked of an
        # MCU that took no byte of this file (a create it did not answer: size 0).
        self.buf = None
        if self.size and self.off == self.size:
            try:
                self.smp.erase()
            except smp.SmpError as e:
                print("targets: secondary slot not erased: %s" % e)

    def activate(self, f, version):
        # Set the new image for one test boot and reset the MCU (MCUboot swaps it in).
        try:
            if self._running()[0] == version:
                return  # it runs the new image already (this board was reset on the way)
            self.smp.test(self._slot1(version))
            self.smp.reset()
        except smp.SmpError as e:
            raise self._error(e)
        self._pause(self.reset_ms)  # it answers first, then resets (Zephyr: 250 ms later)

    def state(self, f):
        # Once the MCU is back from its reset (boot_ms at most). An MCU answers a reset request
        # first and resets after (Zephyr: 250 ms, some much later): while it still lists an
        # image pending in its secondary slot, it has not reset yet.
        deadline = time.ticks_add(time.ticks_ms(), self.boot_ms)
        while True:
            try:
                ims = self.smp.images()
                pending = [im.get("version") for im in ims if im.get("pending") and not im.get("active")]
                if not pending:
                    return self._running(ims)
                why = None
            except smp.SmpError as e:
                why = e
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                if why:
                    raise TargetError("%s does not answer after its reset: %s" % (self.name, why))
                raise TargetError("%s does not reset: image %s is still pending after %d ms"
                                  % (self.name, pending[0], self.boot_ms))
            if not why:
                self._pause(100)

    def _pause(self, ms):
        end = time.ticks_add(time.ticks_ms(), ms)
        while time.ticks_diff(end, time.ticks_ms()) > 0:
            self.feed()
            time.sleep_ms(min(50, ms))

    def _running(self, ims=None):
        for im in self.smp.images() if ims is None else ims:
            if im.get("active"):  # flags that are false are left out, as Zephyr does
                return im.get("version"), not im.get("confirmed")
        raise TargetError("%s lists no running image" % self.name)

    def confirm(self, f):
        try:
            self.smp.confirm()
        except smp.SmpError as e:
            raise self._error(e)


def _vkey(v):
    try:
        return [int(x) for x in v.split(".")]
    except ValueError:
        raise TargetError("versions %s cannot be ordered" % v)
