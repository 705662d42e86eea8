# Firmware over the air from AWS IoT Jobs: the whole flow, in the style of Zerynth's
# AWS IoT FOTA library (handle_fota_jobs, update, test, confirm, reset).
#
# A FOTA job, step by step (every log line names its step: "fota: [step] ..."):
#
#   step      what it does                                  on failure
#   --------  --------------------------------------------  -------------------------------
#   jobs      a job that is not a firmware update goes to   REJECTED "unsupported operation:
#             job_cbk; one it does not take is ended, so    <op>" (or "job document is not
#             that it never holds up the jobs behind it     a JSON object")
#   check     job document -> plan (fotaplan.plan)          FAILED "bad fota data: ..."
#   start     job IN_PROGRESS {step: download}              stop (job cancelled or taken)
#   download  slot writer and its buffers allocated, then   FAILED "download: ..." after
#             MQTT closed, HTTPS stream (or an MQTT stream  3 tries; slot header erased if
#             for afr_ota jobs) -> the other slot, sector   a sector was written, else the
#             by sector, retried from the last good sector  slot is left as it was
#             on a broken connection, and after a power
#             cut from the last 64 KB the record says is
#             in flash
#   verify    size, MD5, signature (with a signer key),     FAILED "verify: ..."; slot
#             version and app image header                  header erased
#   boot      record the job on the filesystem, set_boot    FAILED "boot: ..." (the image
#             (which verifies the image's SHA-256 again)    does not verify); header erased
#   test      job IN_PROGRESS {step: testing}, reset        (report is best effort)
#   -- the bootloader starts the new slot once, as PENDING_VERIFY --
#   confirm   the new slot runs: confirm(), SUCCEEDED       --
#   rollback  the old slot runs again (the new firmware     FAILED "rolled back: ..."
#             crashed, hung, failed its self-test, or
#             never confirmed): the bootloader undid it
#
# An application job (the same document with "target": "app"; apps.py) takes the same steps,
# with an application slot (a folder, or a ROMFS partition) instead of a firmware slot:
#
#   check     document -> plan: app slot 0/1, never the   FAILED "bad fota data: ..."
#             running or confirmed one; bc_size fits it
#   download  the image (ROMFS) streams into the other    FAILED "download: ..." (not a
#             slot: unpacked into its folder, or written  ROMFS image, .mpy for another
#             to its partition; .mpy headers checked      VM, no room); the slot is wiped,
#             against the running VM as they come         the running application untouched
#   verify    size, MD5, app module present, VERSION,     FAILED "verify: ..."; slot wiped
#             signature and no downgrade (signer key)
#   boot      record the job, then switch: apps.json      --
#             names the slot on trial (one rename)
#   test      job IN_PROGRESS {step: testing}, reset
#   -- boot.py (apps.boot) counts the trial boot down and puts the slot on sys.path --
#   confirm   main.py imports `app`, self-test passes,    --
#             confirm(): apps.json confirms the slot;
#             SUCCEEDED with both versions
#   rollback  the trial ended without a confirm: import   FAILED "rolled back: <why>"
#             error or failed self-test (reject(why)),
#             or a reset before confirming (crash, reset
#             loop, watchdog): apps.boot() ran the
#             confirmed slot again and kept the reason
#
# The running firmware and the slot it boots from are never written: a bad document, a
# wrong hash, a broken download or a dead broker end the job FAILED and nothing else.
# A power cut during a download resumes it at the next boot (at most MAX_TRIES times).

import gc
import json
import os

import machine
import otaslot
from esp32 import Partition
from fotaplan import DocError, kind, plan
from https import Broken, HTTPError, get
from jobs import JobsError

RECORD = "fota.json"  # the update in flight, kept across the reset
MAX_TRIES = 3
CHUNK_LOG = 10  # log the download every 10 %
PROGRESS_EVERY = 65536  # record how far the download got, to resume after a power cut
watchdog = None  # set to a machine.WDT to have it fed during long steps
https_ca = None  # CA (DER) for downloads; None: the config's CA
signer = None  # P-256 public key (DER) every image must be signed with; None: the config's
#                "signer" file, if any. With a signer, older or equal versions are refused too.


class FotaError(Exception):
    def __init__(self, step, reason):
        super().__init__("%s: %s" % (step, reason))
        self.step = step
        self.reason = reason


def log(step, msg):
    print("fota: [%s] %s" % (step, msg))


# --- what runs -------------------------------------------------------------------------

def version():
    # The running firmware's version, from its app descriptor (esp_app_desc_t).
    d = otaslot.app_desc(otaslot.running())
    return d[0] if d and d[0] else "unknown"  # stock MicroPython builds leave it empty


def app_version():
    # The running application's version ("none" if the device runs no application slot).
    return _apps().version()


def testing():
    # True on the trial boot of a new firmware or application: it must confirm() or it will
    # be rolled back.
    return _firmware_testing() or _apps().testing()


def _firmware_testing():
    return otaslot.ota_state(otaslot.running()) == otaslot.OTA_PENDING_VERIFY


def confirm():
    # Make the running firmware final (cancels the rollback), and the application on trial.
    if _apps().testing():
        _apps().confirm()
        if not _firmware_testing():
            return
    Partition.mark_app_valid_cancel_rollback()


def reject(reason):
    # Called by a new firmware whose self-test failed: roll back now, and let the old
    # firmware report the job FAILED with this reason.
    rec = _load()
    if rec:
        rec["reason"] = reason
        _save(rec)
    log("rollback", reason)
    if _apps().testing():
        _apps().reject(reason)  # the confirmed application runs again after the reset
    elif hasattr(Partition, "mark_app_invalid_rollback_and_reboot"):
        Partition.mark_app_invalid_rollback_and_reboot()
    reset()


def reset():
    machine.reset()


# --- update and test (usable on their own) ----------------------------------------------

def _plan(document):
    if kind(document) == "app":
        nxt = _apps().other()
        return plan(document, len(_apps().FOLDERS), _apps().mounted, nxt, _apps().capacity(nxt))
    slots = otaslot.slots()
    run = otaslot.slot_index(otaslot.running())
    nxt = Partition(Partition.RUNNING).get_next_update()
    size = slots[0].ioctl(4, 0) * otaslot.SECTOR
    return plan(document, len(slots), run, otaslot.slot_index(nxt), size)


def update(document, ca=None, start=0, progress=None, conn=None, disconnect=False):
    # Download the firmware a FOTA document describes into its slot and check it.
    # start: bytes (whole sectors) already in the slot from an interrupted download;
    # progress(done) is called every PROGRESS_EVERY bytes that are safely in flash;
    # conn: the MQTT connection, for documents whose file comes over an MQTT stream;
    # disconnect: close conn before an HTTPS download, once the update's buffers exist.
    # Returns the new image's version; raises FotaError(step, reason) on any failure.
    # On a failure the slot's previous image is left as it was unless a sector of the new
    # one was written; then its header is erased (never a bootable mix of two images).
    w = None
    try:
        p = _plan(document)
        key = _signer()
        if key and not p.sig:
            raise DocError("unsigned image refused: this device requires bc_sig")
        if p.kind == "afr_ota" and not key:
            raise DocError("afr_ota images are code-signed: this device has no signer key")
        # Every buffer and hash of the update now, while the MQTT session still holds its TLS
        # RAM: on a board, heap growth later could take what the HTTPS handshake needs.
        if p.kind == "app":
            w = _apps().writer(p.slot, p.size, start, bool(key), _feed)
        else:
            w = otaslot.SlotWriter(otaslot.slots()[p.slot], p.size, start, sha256=bool(key))
        source = _source(p, ca, conn)
    except Exception as e:
        _abort(w)
        raise FotaError("check", str(e) if isinstance(e, DocError) else _why(e))
    if disconnect and conn is not None and not p.stream:
        conn.close()  # two TLS sessions do not fit in most boards' RAM
    try:
        _download(w, source, progress)
    except Exception as e:
        _abort(w)
        raise FotaError("download", _why(e))
    try:
        if p.kind == "app":
            desc = (_apps().admit(w.finish(p.md5), p.version, key and _signed(key, w.sha.digest(), p.sig),
                               _newer),)
        else:
            desc = w.finish(p.md5)
            _admit(desc, (key, w.sha.digest(), p.sig) if key else None)
    except Exception as e:
        _abort(w)
        raise FotaError("verify", _why(e))
    log("verify", "%d bytes, %s%s, version %s" % (
        p.size, "MD5 ok" if p.md5 else "no hash in the document", ", signature ok" if key else "",
        desc[0]))
    return desc[0]


def _abort(w):
    if w is None:
        return
    try:
        w.abort()
    except Exception as e:  # the failure being reported matters more
        log("download", "could not invalidate the slot: %s" % _why(e))


def _drop(rec):
    # What the record's download may have left in its slot goes.
    if rec.get("app"):
        _apps().discard(rec["slot"])
    else:
        _invalidate(rec["slot"])


def _invalidate(slot):
    # Erase the header of a slot a download may have written to (never the running one).
    try:
        otaslot.invalidate(otaslot.slots()[slot])
    except Exception as e:
        log("download", "could not invalidate slot %d: %s" % (slot, _why(e)))


def _admit(desc, signed):
    # The new image's descriptor against the running one: never a lower secure_version
    # (anti-rollback); with a signer, a valid signature and a newer version (no downgrade,
    # no replay of an older signed image).
    mine = otaslot.app_desc(otaslot.running())
    if mine and desc[2] < mine[2]:
        raise otaslot.SlotError("secure_version %d is below the running %d" % (desc[2], mine[2]))
    if not signed:
        return
    _signed(*signed)
    if not _newer(desc[0], version()):
        raise otaslot.SlotError("version %s is not newer than the running %s" % (desc[0], version()))


def _signed(key, digest, sig):
    import ecdsa

    if not ecdsa.verify(key, digest, ecdsa.signature(sig)):
        raise otaslot.SlotError("signature does not verify")
    return True


def _newer(a, b):
    # Dotted numbers, with an optional leading v: 1.10.0 > 1.9.2.
    try:
        return _vkey(a) > _vkey(b)
    except ValueError:
        raise otaslot.SlotError("versions %s and %s cannot be ordered (use dotted numbers)" % (a, b))


def _vkey(v):
    return [int(x) for x in (v[1:] if v[:1] in "vV" else v).split(".")]


def _signer():
    der = signer or _config_file("signer")
    if not der:
        return None
    import ecdsa  # only devices that check signatures load it

    return ecdsa.public_key(der)


def _source(p, ca, conn):
    # The transport of a plan: open(start) -> a stream with readinto(), total and close():
    # an MQTT stream (AWS IoT MQTT-based file delivery) or HTTPS.
    if p.stream:
        if conn is None or not conn.connected():
            raise DocError("the file comes over MQTT: the update needs the connection")
        from streams import StreamFile

        log("download", "over MQTT, stream %s file %d" % p.stream)
        return StreamFile(conn, p.stream[0], p.stream[1]).open
    if ca is None:
        ca = https_ca or _config_file("https_ca") or _config_file("ca")
    log("download", "over HTTPS from %s" % p.url.split("/")[2])
    return lambda start: get(p.url, ca, start=start)


def _download(w, source, progress=None):
    # Stream the source into the writer; a broken connection goes on from the last whole
    # sector (the transport must honour `start`).
    tries = 0
    step = max(w.size * CHUNK_LOG // 100, 1)
    mark = w.written - w.written % step + step
    saved = w.written
    while True:
        start = w.restart()
        try:
            r = source(start)
            try:
                if r.total != w.size:
                    raise HTTPError("server has %d bytes, document says %d" % (r.total, w.size))
                log("download", "%s at byte %d" % ("resuming" if start else "starting", start))
                while w.written < w.size and w.feed_from(r):
                    if w.written >= mark:
                        log("download", "%d%% %d/%d bytes" % (w.written * 100 // w.size, w.written, w.size))
                        mark += step
                    done = w.sector * otaslot.SECTOR
                    if progress and done - saved >= PROGRESS_EVERY:
                        progress(done)
                        saved = done
                    _feed()
                return
            finally:
                r.close()
        except (OSError, Broken) as e:
            tries += 1
            if tries >= MAX_TRIES:
                raise
            log("download", "connection lost (%s), retrying" % _why(e))


def test(document, new_version=None):
    # Mark the slot the document's firmware (or application) was written to for one trial
    # boot. The caller resets; the bootloader (or boot.py, for an application) rolls back
    # unless the new firmware or application confirm()s.
    p = _plan(document)
    if p.kind == "app":
        _apps().switch(p.slot, new_version or p.version or "unknown")
    else:
        otaslot.slots()[p.slot].set_boot()


# --- the job flow ----------------------------------------------------------------------

def handle_fota_jobs(jobs, force=False, disconnect_mqtt=True, auto_reset=True, job_cbk=None):
    # Look at this thing's pending jobs and carry out the FOTA ones. Any other job goes to
    # job_cbk(job), which returns True if it takes the job (and ends it itself); a job that
    # nobody takes ends REJECTED, so that it never holds up the jobs queued behind it. After
    # jobs end here the list is asked for again: a service may list only some of them.
    # Returns True when a reset is needed and auto_reset is False.
    if not force and not jobs.changed():
        return False
    taken = []  # ids of jobs job_cbk took and left pending: offered once per call
    while True:
        in_progress, queued = jobs.list()
        ended = False
        update = None
        for job in in_progress + queued:
            if job.id in taken:
                continue
            try:
                job.describe()
            except JobsError as e:
                if e.code == "Timeout":
                    raise  # the connection is gone: the caller reconnects
                log("check", "job %s skipped: %s" % (job.id, e))  # ended or cancelled meanwhile
                continue
            if kind(job.document) is not None:
                update = job
                break
            if _other(job, job_cbk) and job.status in ("QUEUED", "IN_PROGRESS"):
                taken.append(job.id)  # job_cbk keeps it for now
            else:
                ended = True  # by job_cbk or REJECTED here
            job.document = None
        if update or not ended:
            break
    if update:
        # Only this job stays: the update's buffers want the heap in one piece, not strewn
        # with the other jobs of the list.
        in_progress = queued = job = None
        gc.collect()
        if _run(jobs, update, disconnect_mqtt):
            if auto_reset:
                log("test", "resetting into the new firmware")
                reset()
            return True
        return False
    rec = _load()
    if rec and not [j for j in in_progress + queued if j.id == rec["job"]]:
        _orphaned(rec)
    return False


def _other(job, job_cbk):
    # A job that is not a firmware update: True if job_cbk took it; otherwise it ends
    # REJECTED with the reason (as the FreeRTOS OTA agent rejects a job it cannot parse).
    doc = job.document
    if not isinstance(doc, dict):
        _end(job, "REJECTED", "jobs", {"reason": "job document is not a JSON object"})
        return False
    why = None
    if job_cbk:
        try:
            if job_cbk(job):
                return True
        except Exception as e:
            if isinstance(e, OSError) or getattr(e, "code", None) == "Timeout":
                raise  # the connection is gone: the caller reconnects
            why = "job_cbk failed: %s" % _why(e)
    if why is None:
        op = doc.get("operation")
        why = "unsupported operation: %s" % (op if isinstance(op, str) else
                                             "(none)" if op is None else json.dumps(op))
    _end(job, "REJECTED", "jobs", {"reason": why})
    return False


def _orphaned(rec):
    # The job of the update in flight is gone (cancelled while the device was on its way).
    # A new firmware that got this far has passed its self-test: keep it; otherwise there is
    # nobody to report to.
    if rec.get("app") and rec["step"] == "test" and _apps().mounted == rec["slot"] and _apps().testing():
        confirm()
        log("confirm", "job %s is gone; application %s confirmed" % (rec["job"], _apps().version()))
    elif rec["step"] == "test" and otaslot.slot_index(otaslot.running()) == rec["slot"] and testing():
        confirm()
        log("confirm", "job %s is gone; firmware %s confirmed" % (rec["job"], version()))
    else:
        if rec["step"] == "download":  # the slot may hold part of its image
            _drop(rec)
        log("check", "job %s is gone; its record is dropped" % rec["job"])
    _clear()


def _run(jobs, job, disconnect_mqtt):
    # One FOTA job; True when a reset into the new firmware is due.
    rec = _load()
    if rec and rec.get("job") != job.id:
        if rec["step"] == "download":  # another job's download, cut short: part of it may be there
            _drop(rec)
        rec = None
    if not rec and job.status_details.get("step") == "testing":
        rec = _record_from(job)  # the record was lost: the job's statusDetails tell the rest
    if rec and rec["step"] in ("test", "done", "lost"):
        _after_trial(job, rec)
        return False
    try:
        p = _plan(job.document)
    except DocError as e:
        return _fail(job, "check", "bad fota data: %s" % e)
    tries = rec["tries"] + 1 if rec else 1
    if tries > MAX_TRIES:
        _drop(rec)  # power cuts mid-download: part of the image may be there
        return _fail(job, "download", "interrupted %d times" % MAX_TRIES)
    # After a power cut, go on from what the record says is in flash, if it is the same image.
    start = rec.get("done", 0) if rec and rec.get("md5") == p.md5 and rec["slot"] == p.slot else 0
    app = p.kind == "app"
    old = _apps().version() if app else version()
    log("start", "job %s: %s%s -> %s into slot %d" % (
        job.id, "application " if app else "", old, p.version or "?", p.slot))
    try:
        job.update("IN_PROGRESS", _details(app, {"step": "download", "from_version": old}))
    except Exception as e:
        log("start", "job not started: %s" % e)
        return False
    run = _apps().mounted if app else otaslot.slot_index(otaslot.running())
    rec = {"job": job.id, "step": "download", "slot": p.slot, "from": run, "tries": tries,
           "old": old, "md5": p.md5, "done": start}
    if app:
        rec["app"] = True
    _save(rec)

    def progress(done):
        rec["done"] = done
        _save(rec)

    try:
        rec["new"] = update(job.document, start=start, progress=progress, conn=jobs.conn,
                            disconnect=disconnect_mqtt)
    except FotaError as e:
        progress(0)  # what is in the slot is no good: a retry starts over
        _reconnect(jobs)
        return _fail(job, e.step, e.reason)
    rec["step"] = "test"
    _save(rec)
    try:
        test(job.document, rec["new"])
    except OSError as e:  # set_boot verifies the image (checksum, SHA-256) first
        rec["step"] = "download"
        _save(rec)
        _drop(rec)
        _reconnect(jobs)
        return _fail(job, "boot", "image does not verify (%s)" % _why(e))
    log("boot", "slot %d set for one trial boot" % p.slot)
    try:
        _reconnect(jobs)
        job.update("IN_PROGRESS", _details(app, {"step": "testing", "from_version": old,
                                                 "version": rec["new"]}))
    except Exception as e:  # the new firmware reports the outcome
        log("test", "could not report testing: %s" % e)
    return True


def _details(app, d):
    # statusDetails name both versions: for an application job, "version" and "from_version"
    # are the application's, "firmware" the firmware's; for a firmware job, "app_version".
    d.update({"target": "app", "firmware": version()} if app else {"app_version": _apps().version()})
    return d


def _after_trial(job, rec):
    if rec.get("app"):
        why = _apps().outcome(rec)  # None: the new application runs (and is confirmed now)
        d = _details(True, {"version": _apps().version()})  # the application that runs
        if why:
            d["reason"] = "rolled back: %s" % why
            return _finish(job, "FAILED", "rollback", d)
        d["from_version"] = rec["old"]
        return _finish(job, "SUCCEEDED", "confirm", d)
    run = otaslot.slot_index(otaslot.running())
    if run == rec["slot"]:
        if rec["step"] == "test":
            confirm()
            rec["step"] = "done"
            _save(rec)
            log("confirm", "firmware %s confirmed" % version())
        _finish(job, "SUCCEEDED", "confirm", _details(False, {"version": version(),
                                                              "from_version": rec["old"]}))
        return
    state = otaslot.ota_state(otaslot.slots()[rec["slot"]]) if rec["slot"] >= 0 else None
    if rec.get("reason"):
        why = "rolled back: %s" % rec["reason"]
    elif state in (otaslot.OTA_ABORTED, otaslot.OTA_INVALID):
        why = "rolled back: firmware %s did not confirm" % rec.get("new", "?")
    elif rec["step"] == "lost":
        why = "rolled back: running %s, not %s" % (version(), rec.get("new"))
    else:
        why = "rolled back: the trial boot did not happen"
    _fail(job, "rollback", why)


def _record_from(job):
    d = job.status_details
    if d.get("target") == "app":
        return _apps().record_from(job.id, d)
    same = version() == d.get("version")
    run = otaslot.slot_index(otaslot.running())
    return {"job": job.id, "step": "test" if same else "lost", "slot": run if same else -1,
            "from": -1, "tries": 1, "old": d.get("from_version", "?"), "new": d.get("version")}


def _fail(job, step, reason):
    _finish(job, "FAILED", step, {"reason": reason})
    return False


def _finish(job, status, step, details):
    _end(job, status, step, details)
    _clear()


def _end(job, status, step, details):
    details["step"] = step
    log(step, "job %s %s %s" % (job.id, status, details))
    try:
        job.update(status, details)
    except Exception as e:
        code = getattr(e, "code", None)
        if code not in ("TerminalStateReached", "InvalidStateTransition", "ResourceNotFound"):
            raise  # keep the record: the outcome is reported next time
        log(step, "job %s already ended (%s)" % (job.id, code))


def _reconnect(jobs):
    if not jobs.conn.connected():
        jobs.conn.connect()


# --- the record of the update in flight ----------------------------------------------------

def _load():
    try:
        with open(RECORD) as f:
            rec = json.load(f)
        return rec if isinstance(rec, dict) and "job" in rec else None
    except (OSError, ValueError):
        return None


def _save(rec):
    with open(RECORD + ".tmp", "w") as f:
        json.dump(rec, f)
    os.rename(RECORD + ".tmp", RECORD)


def _clear():
    try:
        os.remove(RECORD)
    except OSError:
        pass


def _config_file(key):
    # The contents of the file config.json names under key, or None.
    from awsiot import CONFIG, read

    try:
        with open(CONFIG) as f:
            path = json.load(f).get(key)
    except (OSError, ValueError):
        return None
    return read(path) if path else None


def _apps():
    import apps  # application slots: loaded when first needed (a device may have none)

    return apps


def _feed():
    if watchdog:
        watchdog.feed()


def _why(e):
    return str(e) or e.__class__.__name__
