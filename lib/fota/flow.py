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
#   check     job document -> plan (fota.plan: plan, files)   FAILED "bad fota data: ..."; a
#                                                           file id with no target: REJECTED
#                                                           "file N: no target for this file id"
#   files     afr_ota files N > 0 (fota/files.py), one   FAILED "file N: <reason>" (step
#             after the other, before this processor's      download, verify, activate or
#             own (file 0), each to the target registered   confirm); the target drops what
#             as targets[N]: create, the stream -> SHA-256  it staged (abort); this ESP32 is
#             -> write, close (the target's checks, its     not touched. Done files are kept
#             version), signature, activate (a secondary    in the record: a power cut goes
#             MCU: test boot), state (the new version must  on with the next one, an upload
#             run), confirm; IN_PROGRESS {file_N: version}  at the offset the MCU reports,
#             after each; SUCCEEDED here if there is no     a secondary on trial is read
#             file 0, with each file's version              back, not tested again
#   start     job IN_PROGRESS {step: download}              stop (job cancelled or taken)
#   download  slot writer and its buffers allocated, then   FAILED "download: ..." after
#             MQTT closed, HTTPS stream (or an MQTT stream  3 tries (bad compressed data
#             for afr_ota jobs), through the plan's codec   at once); slot header erased if
#             (fota/install.py: inflated or patched)      a sector was written, else the
#             -> the other slot, sector by sector, retried  slot is left as it was
#             from the last good sector
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
# An application job (the same document with "target": "app"; fota/apps.py) takes the same steps,
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
#   confirm   the loop imports `app`, self-test passes,    --
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

import machine
from fota import core, otaslot
from fota.core import FotaError, MAX_TRIES, apps, confirm, fail, finish, log, reconnect, testing, version
from fota.jobs import JobsError
from fota.plan import DocError, files, kind, show


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
                machine.reset()
            return True
        return False
    rec = core.load()
    if rec and not [j for j in in_progress + queued if j.id == rec["job"]]:
        _orphaned(rec)
    return False


def _other(job, job_cbk):
    # A job that is not a firmware update: True if job_cbk took it; otherwise it ends
    # REJECTED with the reason (as the FreeRTOS OTA agent rejects a job it cannot parse).
    doc = job.document
    if not isinstance(doc, dict):
        core.end(job, "REJECTED", "jobs", {"reason": "job document is not a JSON object"})
        return False
    why = None
    if job_cbk:
        try:
            if job_cbk(job):
                return True
        except Exception as e:
            if isinstance(e, OSError) or getattr(e, "code", None) == "Timeout":
                raise  # the connection is gone: the caller reconnects
            why = "job_cbk failed: %s" % core.why(e)
    if why is None:
        op = doc.get("operation")
        why = "unsupported operation: %s" % ("(none)" if op is None else show(op))
    core.end(job, "REJECTED", "jobs", {"reason": why})
    return False


def _orphaned(rec):
    # The job of the update in flight is gone (cancelled while the device was on its way).
    # A new firmware that got this far has passed its self-test: keep it; otherwise there is
    # nobody to report to. Only what the job installed: an application's record confirms
    # neither another application nor a firmware, whatever OTA slot the firmware runs from.
    app, trial = rec.get("app"), rec["step"] == "test"
    if app and trial and apps().mounted == rec["slot"] and apps().testing():
        confirm()
        log("confirm", "job %s is gone; application %s confirmed" % (rec["job"], apps().version()))
    elif not app and trial and otaslot.slot_index(otaslot.running()) == rec["slot"] and testing():
        confirm()
        log("confirm", "job %s is gone; firmware %s confirmed" % (rec["job"], version()))
    else:
        if rec["step"] == "download":  # the slot may hold part of its image
            _drop(rec)
        log("check", "job %s is gone; its record is dropped" % rec["job"])
    core.clear()


def _run(jobs, job, disconnect_mqtt):
    # One FOTA job; True when a reset into the new firmware is due.
    rec = core.load()
    if rec and rec.get("job") != job.id:
        if rec["step"] == "download":  # another job's download, cut short: part of it may be there
            _drop(rec)
        rec = None
    if not rec and job.status_details.get("step") == "testing":
        rec = _record_from(job)  # the record was lost: the job's statusDetails tell the rest
    if rec and rec["step"] in ("test", "done", "lost"):
        _after_trial(job, rec)
        return False
    from fota import install  # one image, document to slot: only FOTA jobs load it

    try:
        fs = files(job.document)
        p = install.plan_for(job.document) if not fs or [f for f in fs if f.id == 0] else None
    except DocError as e:
        return fail(job, "check", "bad fota data: %s" % e)
    fs = [f for f in fs if f.id]
    for f in fs:
        if f.id not in core.targets:
            finish(job, "REJECTED", "check", {"reason": "file %d: no target for this file id" % f.id})
            return False
    done = rec.get("files") or {} if rec else {}
    if fs and not (rec and rec["step"] == "download"):  # not once this processor's has begun
        from fota import files as step  # the files step: only such jobs load it

        done = step.run(jobs, job, fs, rec)
        if done is None:
            return False  # the job has ended
        if p is None:  # no firmware for this processor: no reset
            finish(job, "SUCCEEDED", "confirm", done)
            return False
        rec = None  # now this processor's firmware, with a record of its own
        gc.collect()
    tries = rec["tries"] + 1 if rec else 1
    if tries > MAX_TRIES:
        _drop(rec)  # power cuts mid-download: part of the image may be there
        return fail(job, "download", "interrupted %d times" % MAX_TRIES)
    # After a power cut, go on from what the record says is in flash, if it is the same image.
    start = rec.get("done", 0) if rec and rec.get("md5") == p.md5 and rec["slot"] == p.slot else 0
    state = rec.get("codec") if start else None
    app = p.kind == "app"
    old = apps().version() if app else version()
    log("start", "job %s: %s%s -> %s into slot %d" % (
        job.id, "application " if app else "", old, p.version or "?", p.slot))
    try:
        job.update("IN_PROGRESS", _details(app, {"step": "download", "from_version": old}))
    except Exception as e:
        log("start", "job not started: %s" % e)
        if getattr(e, "code", None) == "Timeout":
            raise  # no answer: the caller reconnects and looks again (the update may have been made)
        return False
    run = apps().mounted if app else otaslot.slot_index(otaslot.running())
    rec = {"job": job.id, "step": "download", "slot": p.slot, "from": run, "tries": tries,
           "old": old, "md5": p.md5, "done": start, "codec": state, "files": done}
    if app:
        rec["app"] = True
    core.save(rec)

    def progress(done, state=None):
        rec["done"] = done
        rec["codec"] = state
        core.save(rec)

    try:
        rec["new"] = install.update(job.document, start=start, progress=progress, conn=jobs.conn,
                                    disconnect=disconnect_mqtt, state=state)
    except FotaError as e:
        progress(0)  # what is in the slot is no good: a retry starts over
        reconnect(jobs)
        return fail(job, e.step, _mine(rec, e.reason))
    rec["step"] = "test"
    core.save(rec)
    try:
        install.test(job.document, rec["new"])
    except OSError as e:  # set_boot verifies the image (checksum, SHA-256) first
        rec["step"] = "download"
        core.save(rec)
        _drop(rec)
        reconnect(jobs)
        return fail(job, "boot", _mine(rec, "image does not verify (%s)" % core.why(e)))
    log("boot", "slot %d set for one trial boot" % p.slot)
    try:
        reconnect(jobs)
        job.update("IN_PROGRESS", _details(app, {"step": "testing", "from_version": old,
                                                 "version": rec["new"]}))
    except Exception as e:  # the new firmware reports the outcome
        log("test", "could not report testing: %s" % e)
    return True


def _details(app, d):
    # statusDetails name both versions: for an application job, "version" and "from_version"
    # are the application's, "firmware" the firmware's; for a firmware job, "app_version".
    d.update({"target": "app", "firmware": version()} if app else {"app_version": apps().version()})
    return d


def _after_trial(job, rec):
    if rec.get("app"):
        why = apps().outcome(rec)  # None: the new application runs (and is confirmed now)
        d = _details(True, {"version": apps().version()})  # the application that runs
        if why:
            d["reason"] = "rolled back: %s" % why
            return finish(job, "FAILED", "rollback", d)
        d["from_version"] = rec["old"]
        return finish(job, "SUCCEEDED", "confirm", d)
    run = otaslot.slot_index(otaslot.running())
    if run == rec["slot"]:
        if rec["step"] == "test":
            confirm()
            rec["step"] = "done"
            core.save(rec)
            log("confirm", "firmware %s confirmed" % version())
        details = _details(False, {"version": version(), "from_version": rec["old"]})
        details.update(rec.get("files") or {})
        finish(job, "SUCCEEDED", "confirm", details)
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
    fail(job, "rollback", _mine(rec, why))


def _mine(rec, reason):
    # A failure of this processor's firmware in a job of several files names its file id.
    return "file 0: " + reason if rec.get("files") else reason


def _record_from(job):
    d = job.status_details
    if d.get("target") == "app":
        return apps().record_from(job.id, d)
    same = version() == d.get("version")
    run = otaslot.slot_index(otaslot.running())
    return {"job": job.id, "step": "test" if same else "lost", "slot": run if same else -1,
            "from": -1, "tries": 1, "old": d.get("from_version", "?"), "new": d.get("version")}


def _drop(rec):
    # What the record's download may have left in its slot goes.
    if rec.get("app"):
        apps().discard(rec["slot"])
    else:
        try:  # erase the header of the slot a download may have written to (never the running one)
            otaslot.invalidate(otaslot.slots()[rec["slot"]])
        except Exception as e:
            log("download", "could not invalidate slot %d: %s" % (rec["slot"], core.why(e)))
