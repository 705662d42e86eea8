# Application slots: the application runs from one of two slots, apart from the firmware; an
# application job writes the other slot, checks it, and switches to it for one trial boot.
#
# An application release is a ROMFS image (see romimage.py) whose top holds `app.mpy` (or
# `app.py`), the module main.py imports, and optionally `VERSION` (its version, as text).
# Two routes, picked by what the firmware has:
#   folders  /app0 and /app1 on the filesystem: the image is unpacked into the other folder
#            as it downloads (any firmware; the stock one has no ROMFS slots)
# The record apps.json says which slot is confirmed, which is on trial and how many trial
# boots it has left; it is written to a temporary file and renamed (atomic in littlefs), so
# a power cut leaves the old record or the new one, and that one rename is the switch.
#
# At each boot (boot.py calls boot()): a slot on trial with a boot left counts it down and
# runs; a trial with none left (it reset before it confirmed: a crash, a reset loop, the
# watchdog, a power cut) ends: the confirmed slot runs again and the reason is kept for the
# job flow to report. fota.confirm() confirms a trial, fota.reject(why) ends it at once.

import json
import os
import sys

import romimage

RECORD = "apps.json"
FOLDERS = ("/app0", "/app1")
TRIAL_BOOTS = 1
RESERVE = 16 * 4096  # filesystem space left to the records and the application's files
mounted = None  # the slot this boot runs, or None (set by boot())
CAUSES = {1: "power-on", 2: "hard reset", 3: "watchdog reset", 4: "deep sleep", 5: "soft reset"}


def log(msg):
    print("apps: %s" % msg)


# --- the record -------------------------------------------------------------------------

def load():
    try:
        with open(RECORD) as f:
            rec = json.load(f)
        if isinstance(rec, dict) and "slot" in rec:
            return rec
    except (OSError, ValueError):
        pass
    return {"slot": None, "trial": None, "left": 0, "versions": [None, None], "failed": None}


def save(rec):
    with open(RECORD + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(RECORD + ".tmp", RECORD)


# --- boot, trial, confirm ---------------------------------------------------------------

def boot():
    # Which slot runs this boot; puts it on sys.path (before /lib). Returns the slot or None.
    global mounted
    rec = load()
    slot = rec["slot"]
    if rec["trial"] is not None:
        if rec["left"] > 0:
            rec["left"] -= 1
            slot = rec["trial"]
            log("[boot] slot %d on trial (application %s)" % (slot, rec["versions"][slot]))
        else:
            rec["failed"] = "application %s did not confirm (%s on its trial boot)" % (
                rec["versions"][rec["trial"]], _cause())
            log("[rollback] " + rec["failed"])
            rec["trial"] = None
        save(rec)
    if slot is not None:
        _mount(slot)
    mounted = slot
    return slot


def _cause():
    import machine

    c = machine.reset_cause()
    return CAUSES.get(c, "reset cause %d" % c)


def _mount(slot):
    path = FOLDERS[slot]
    for p in FOLDERS:
        if p in sys.path:
            sys.path.remove(p)
    i = sys.path.index("/lib") if "/lib" in sys.path else len(sys.path)
    sys.path.insert(i, path)  # frozen modules and '' stay first: an app cannot shadow them
    log("[boot] application %s from %s" % (load()["versions"][slot], path))


def testing():
    # True while the application that runs is on its trial.
    return mounted is not None and load()["trial"] == mounted


def confirm():
    rec = load()
    if rec["trial"] is None or rec["trial"] != mounted:
        return
    rec["slot"] = mounted
    rec["trial"] = None
    rec["failed"] = None
    save(rec)
    log("[confirm] application %s confirmed" % rec["versions"][mounted])


def reject(reason):
    # End the trial now: the caller resets, and the confirmed slot runs again.
    rec = load()
    if rec["trial"] is None:
        return
    rec["failed"] = reason
    rec["trial"] = None
    save(rec)
    log("[rollback] " + reason)


def failed():
    return load()["failed"]


def version(slot=-1):
    # The version of the application that runs (or of a slot): "none" if there is none.
    slot = mounted if slot == -1 else slot
    v = load()["versions"][slot] if slot is not None else None
    return v or "none"


def active():
    # The slots a job may not write: the one that runs and the confirmed one.
    rec = load()
    return [s for s in (mounted, rec["slot"]) if s is not None]


def other():
    busy = active()
    return 1 if 0 in busy else 0


# --- writing a slot ---------------------------------------------------------------------

def capacity(slot):
    # Bytes an image for `slot` may have: the free space, the slot's old files included.
    st = os.statvfs("/")
    return st[0] * st[3] + _du(FOLDERS[slot], st[0]) - RESERVE


def writer(slot, size, sha256=False, tick=None):
    if slot in active():
        raise romimage.ImageError("refusing to write the running application's slot %d" % slot)
    rec = load()
    if rec["versions"][slot] is not None:
        rec["versions"][slot] = None  # the slot's old application is about to go
        save(rec)
    return FolderWriter(FOLDERS[slot], size, sha256, tick)


def switch(slot, new_version):
    # One atomic rename: the slot runs on trial from the next boot.
    rec = load()
    rec["versions"][slot] = new_version
    rec["trial"] = slot
    rec["left"] = TRIAL_BOOTS
    rec["failed"] = None
    save(rec)


def discard(slot):
    # Drop what a slot holds (never the running application's).
    if slot in active():
        return
    _rmtree(FOLDERS[slot])


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
        self.sector = 0  # nothing is ever kept over a power cut: progress stays 0
        self.touched = False
        self.restart()

    def restart(self):
        self.written = 0
        self.md5 = self.hashlib.md5()
        self.sha = self.hashlib.sha256() if self.use_sha else None
        self.has_app = False
        self.version = None
        if self.touched:
            _rmtree(self.path)
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
        _rmtree(self.path)
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
        if name in ("app.mpy", "app.py"):
            self.has_app = True
        mv = memoryview(self.buf)
        try:
            f = open(self.path + "/" + name, "wb")
        except OSError as e:
            raise romimage.ImageError("cannot write %s: %s" % (name, e))
        with f:
            first = True
            while n or first:
                k = min(n, len(mv))
                rd.exact(mv[:k])
                if first:
                    _inspect(self, name, mv[:k])
                    first = False
                try:
                    f.write(mv[:k])
                except OSError as e:
                    raise romimage.ImageError("cannot write %s: %s" % (name, e))
                n -= k

    def _mkdir(self, path):
        try:
            os.mkdir(path)
        except OSError as e:
            raise romimage.ImageError("cannot make %s: %s" % (path, e))

    def finish(self, md5_hex):
        # -> the image's own version (its VERSION file), or None.
        import binascii

        if self.written != self.size:
            raise romimage.ImageError("short image: %d of %d bytes" % (self.written, self.size))
        digest = binascii.hexlify(self.md5.digest()).decode()
        if md5_hex is not None and digest != md5_hex.lower():
            raise romimage.ImageError("MD5 mismatch: image %s, document %s" % (digest, md5_hex))
        if not self.has_app:
            raise romimage.ImageError("no app.mpy or app.py at the top of the image")
        return self.version

    def abort(self):
        if self.touched:
            _rmtree(self.path)


def _inspect(w, name, head):
    # What an image's file says before it is kept: .mpy headers, the VERSION file.
    if name.endswith(".mpy"):
        romimage.check_mpy(name, head)
    elif name == "VERSION":
        v = bytes(head).decode().strip() if len(head) <= 31 else ""
        if not v:
            raise romimage.ImageError("VERSION must be 1 to 31 characters")
        w.version = v


def _du(path, block):
    # Bytes a folder's files hold on the filesystem, in whole blocks.
    total = 0
    try:
        for e in os.ilistdir(path):
            p = path + "/" + e[0]
            if e[1] == 0x4000:
                total += _du(p, block) + block
            else:
                total += (os.stat(p)[6] + block - 1) // block * block
    except OSError:
        pass
    return total


def _rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for e in entries:
        p = path + "/" + e[0]
        if e[1] == 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)
