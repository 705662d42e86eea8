# Application slots: the application runs from one of two slots, apart from the firmware; an
# application job writes the other slot, checks it, and switches to it for one trial boot.
#
# An application release is a ROMFS image (see romimage.py) whose top holds `app.mpy` (or
# `app.py`), the module the loop imports (start()), and optionally `VERSION` (its version, as text).
# Two routes, picked by what the firmware has:
#   romfs    a firmware with ROMFS (vfs.rom_ioctl and a "romfs" partition: this project's
#            FOTA_ESP32): the partition's two halves are the slots; the image is written
#            sector by sector into the other half (otaslot.SlotWriter), checked there, and
#            mounted in place at /rom (its .mpy bytecode runs from flash)
#   folders  /app0 and /app1 on the filesystem: the image is unpacked into the other folder
#            as it downloads (any firmware; the stock one has no ROMFS)
# Either way each .mpy header is checked against the running VM before the switch.
# The record apps.json says which slot is confirmed, which is on trial and how many trial
# boots it has left; it is written to a temporary file and renamed (atomic in littlefs), so
# a power cut leaves the old record or the new one, and that one rename is the switch.
#
# At each boot (boot.py calls boot(); the loop then imports the application with start()): a slot on trial with a boot left counts it down and
# runs; a trial with none left (it reset before it confirmed: a crash, a reset loop, the
# watchdog, a power cut) ends: the confirmed slot runs again and the reason is kept for the
# job flow to report. fota.confirm() confirms a trial, fota.reject(why) ends it at once.

import json
import os
import sys

RECORD = "apps.json"
FOLDERS = ("/app0", "/app1")
ROM = "/rom"  # where a ROMFS slot is mounted (the firmware mounts slot 0 there at power-up)
TRIAL_BOOTS = 1
RESERVE = 16 * 4096  # filesystem space left to the records and the application's files
mounted = None  # the slot this boot runs, or None (set by boot())
where = None  # its folder: /rom (a ROMFS slot), /app0 or /app1
OWN = ("fota", "umqtt")  # the library's names at the top of sys.path
LOADED = ("umqtt.simple",)  # the library's own, loaded before an application's folder goes on sys.path
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
    # Which slot runs this boot; mounts it for start(). Returns the slot or None.
    global mounted
    rec = load()
    if _adopt(rec):
        save(rec)
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
    try:
        _mount(slot)
    except Exception as e:  # a trial slot that does not mount ends its trial
        if slot is None or slot == rec["slot"]:
            raise
        reject("slot %d does not mount: %r" % (slot, e))
        slot = rec["slot"]
        _mount(slot)
    mounted = slot
    return slot


def _adopt(rec):
    # A device that never took an application job (no record yet) whose firmware mounted a
    # ROMFS slot 0 at /rom (put there by the factory or `mpremote romfs deploy`): that is the
    # confirmed application, if its image fits the slot (the firmware mounted the whole
    # partition; a slot is half of it). (The first job writes the record before it writes a
    # slot, so a half-written slot is never taken for one.) -> True if rec now says so.
    if rec["slot"] is not None or _exists(RECORD):
        return False
    seg = segment()
    if seg is None:
        return False
    if not (_exists(ROM + "/app.mpy") or _exists(ROM + "/app.py")):
        return False
    why = _oversize(seg, 0)
    if why:  # `mpremote romfs deploy` checks an image against the whole partition only
        log("[boot] %s: not adopted, no application runs (deploy one of at most %d bytes)" % (
            why, _half(seg)))
        return False
    try:
        with open(ROM + "/VERSION") as f:
            v = f.read(32).strip()
    except OSError:
        v = ""
    rec["slot"] = 0
    rec["versions"][0] = v if 0 < len(v) <= 31 else "unknown"
    log("[boot] ROMFS slot 0 holds application %s: confirmed" % rec["versions"][0])
    return True


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _cause():
    import machine

    c = machine.reset_cause()
    return CAUSES.get(c, "reset cause %d" % c)


def _mount(slot):
    # Mount the slot (a ROMFS half at /rom; a folder is there already) for start() to import
    # from; slot None: no application at all. Nothing goes on sys.path before start().
    global where
    seg = segment()
    _unpath(seg is not None)
    if seg is not None:
        import vfs

        try:
            vfs.umount(ROM)  # slot 0 as the firmware mounted it, whatever the record says
        except OSError:
            pass
        if slot is not None:
            why = _oversize(seg, slot)
            if why:
                raise OSError(19, why)  # ENODEV, as VfsRom says it, with the sizes
            vfs.mount(vfs.VfsRom(_view(seg, slot)), ROM)
    where = None if slot is None else ROM if seg is not None else FOLDERS[slot]
    if where:
        log("[boot] application %s from %s" % (
            load()["versions"][slot], where if seg is None else "ROMFS slot %d" % slot))


def _unpath(rom):
    # No application folder on sys.path (a firmware with ROMFS puts /rom there at power-up;
    # without ROMFS, /rom is not an application's).
    for p in FOLDERS + ((ROM,) if rom else ()):
        for q in (p, p + "/lib"):
            while q in sys.path:
                sys.path.remove(q)


def start(reject):
    # Import the application (the module `app` of the slot that runs) -> the module or None.
    # An import error on its trial boot calls reject(why) (fota.reject: a reset into the
    # confirmed application); on a confirmed one, None: the loop goes on without it, so that
    # a fixed release can still come.
    # Its folder goes first on sys.path, so that its modules are its own; the library's
    # modules are loaded before that, and where the application carries one of the library's
    # top-level names (OWN), the library's entries leave sys.modules while the application is
    # imported and come back after: each keeps its own modules.
    if mounted is None or where is None:
        return None
    for name in LOADED:
        try:
            __import__(name)
        except ImportError:
            pass
    sys.path.insert(0, where + "/lib")
    sys.path.insert(0, where)
    hidden = {}
    for name in OWN:
        if _carries(name):
            for k in list(sys.modules):
                if k == name or k.startswith(name + "."):
                    hidden[k] = sys.modules.pop(k)
    try:
        import app

        return app
    except Exception as e:
        why = "import of application %s failed: %r" % (version(), e)
        log("[start] " + why)
        if testing():
            reject(why)
        return None
    finally:
        if hidden:
            for k in list(sys.modules):
                if k.split(".")[0] in OWN:
                    sys.modules.pop(k)
            sys.modules.update(hidden)


def _carries(name):
    # True if the application's folder (or its lib/) has a module or package of that name.
    for d in (where, where + "/lib"):
        for n in (name, name + ".py", name + ".mpy"):
            if _exists(d + "/" + n):
                return True
    return False


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


def outcome(rec):
    # After an application job's trial boot (rec: fota's record of the job): None if its slot
    # runs (confirmed now if still on trial), else why not.
    if mounted == rec["slot"]:
        confirm()
        return None
    why = rec.get("reason") or failed()
    if why:
        return why
    if rec["step"] == "test":
        return "the trial boot did not happen"
    return "running application %s, not %s" % (version(), rec.get("new"))


def record_from(job_id, d):
    # fota's record of an application job, from its statusDetails (the record was lost).
    same = mounted is not None and version() == d.get("version")
    return {"job": job_id, "step": "test" if same else "lost", "slot": mounted if same else -1,
            "from": -1, "tries": 1, "old": d.get("from_version", "?"), "new": d.get("version"),
            "app": True}


def failed():
    return load()["failed"]


def version(slot=-1):
    # The version of the application that runs (or of a slot): "none" if there is none.
    slot = mounted if slot == -1 else slot
    v = load()["versions"][slot] if slot is not None else None
    return v or "none"


def admit(own, said, signed, newer):
    # An image's version: its VERSION file (own), else the document's (said). A signed image
    # (its signature checked: signed is True) must carry its VERSION, newer than the running
    # application's (newer(a, b): a > b). -> the version.
    if own and said and own != said:
        raise ValueError("the image is version %s, the document says %s" % (own, said))
    if signed:
        if not own:
            raise ValueError("a signed application must carry its VERSION file")
        if version() != "none" and not newer(own, version()):
            raise ValueError("version %s is not newer than the running application %s" % (
                own, version()))
    return own or said or "unknown"


def active():
    # The slots a job may not write: the one that runs and the confirmed one.
    rec = load()
    return [s for s in (mounted, rec["slot"]) if s is not None]


def other():
    busy = active()
    return 1 if 0 in busy else 0


# --- writing a slot ---------------------------------------------------------------------

def capacity(slot):
    # Bytes an image for `slot` may have: a ROMFS half; or the free space, the slot's old
    # files included.
    seg = segment()
    if seg is not None:
        return _half(seg)
    from fota import appwrite

    st = os.statvfs("/")
    return st[0] * st[3] + appwrite.du(FOLDERS[slot], st[0]) - RESERVE


def writer(slot, size, start=0, sha256=False, tick=None):
    # The writer for an image into `slot` (never the running or the confirmed one).
    from fota import appwrite

    if slot in active():
        raise appwrite.ImageError("refusing to write the running application's slot %d" % slot)
    rec = load()
    rec["versions"][slot] = None  # the slot's old application is about to go
    save(rec)  # and from now on the device has a record (see _adopt)
    seg = segment()
    if seg is not None:
        return appwrite.RomWriter(seg, slot, _half(seg), size, start, sha256)
    return appwrite.FolderWriter(FOLDERS[slot], size, sha256, tick)


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
    from fota import appwrite

    if slot in active():
        return
    seg = segment()
    if seg is not None:
        appwrite.Half(seg, slot, _half(seg)).ioctl(6, 0)  # no ROMFS header: it mounts no more
    else:
        appwrite.rmtree(FOLDERS[slot])


# --- the ROMFS partition ----------------------------------------------------------------

def segment():
    # The firmware's ROMFS partition (memory-mapped), or None: then the folders route.
    try:
        import vfs
    except ImportError:
        return None
    if not hasattr(vfs, "rom_ioctl") or vfs.rom_ioctl(1) < 1:
        return None
    seg = vfs.rom_ioctl(2, 0)
    return None if isinstance(seg, int) else seg


def _half(seg):
    return seg.ioctl(4, 0) * seg.ioctl(5, 0) // 2


def _oversize(seg, slot):
    # Why the ROMFS image in `slot` cannot mount from it: its header (d2 cd 31, then the
    # payload's length as a varuint, extmod/vfs_rom.c) gives more bytes than the slot holds
    # (it runs into the other slot). None if it fits or is no image.
    h = _half(seg)
    head = memoryview(seg)[slot * h:slot * h + 8]
    if bytes(head[:3]) != b"\xd2\xcd\x31":
        return None
    n = 0
    for i in range(3, 8):
        n = (n << 7) | (head[i] & 0x7F)
        if not head[i] & 0x80:
            n += i + 1  # the header's own bytes
            break
    if n > h:
        return "ROMFS slot %d holds an image of %d bytes, more than the slot's %d" % (slot, n, h)
    return None


def _view(seg, slot):
    h = _half(seg)
    return memoryview(seg)[slot * h:(slot + 1) * h]
