# The files step of a job of several files (fota/flow.py's step table: "files"): the files
# with ids above 0, one after the other, each to the target the application registered for its
# id (fota.targets, fota/target.py), before this processor's own firmware. Kept out of
# fota/flow.py so that boards and jobs without such files do not load it.

import gc
import hashlib

from fota import core, install
from fota.core import FotaError, log, why
from fota.https import Broken, HTTPError


def run(jobs, job, fs, rec):
    # The job's files for the targets, one after the other, before this processor's own
    # firmware: each is written, checked, activated and its new version read back and
    # confirmed. -> {"file_<id>": version} when all are done; None when the job has ended.
    if not rec or rec.get("step") != "files":
        rec = {"job": job.id, "step": "files", "slot": -1, "tries": 0, "files": {}}
    rec["tries"] += 1
    if rec["tries"] > core.MAX_TRIES:
        return core.fail(job, "download", "interrupted %d times" % core.MAX_TRIES) or None
    key = install.signer_key()
    if key is None:
        return core.fail(job, "check", "afr_ota images are code-signed: this device has no signer key") or None
    try:
        job.update("IN_PROGRESS", {"step": "files", "from_version": core.version()})
    except Exception as e:
        log("start", "job not started: %s" % e)
        if getattr(e, "code", None) == "Timeout":
            raise  # no answer: the caller reconnects and looks again
        return None
    core.save(rec)
    for f in fs:
        name = "file_%d" % f.id
        if name in rec["files"]:
            continue  # done before a power cut
        gc.collect()  # each file's buffers and stream blocks into a heap in one piece
        try:
            rec["files"][name] = _one(jobs, f, core.targets[f.id], key, rec)
        except FotaError as e:
            if e.step == "download":
                jobs.conn.close()  # a stream read cut short (no memory) may leave half a message
            core.reconnect(jobs)
            return core.fail(job, e.step, "file %d: %s" % (f.id, e.reason)) or None
        rec.pop("file", None)
        core.save(rec)
        details = {"step": "files", "from_version": core.version()}
        details.update(rec["files"])
        try:
            job.update("IN_PROGRESS", details)  # how far the job got, for whoever watches it
        except Exception as e:
            log("files", "could not report file %d: %s" % (f.id, e))
    return rec["files"]


def _one(jobs, f, t, key, rec):
    # One file into its target: create, write, close, signature, activate, state, confirm.
    # -> the version the target reports; FotaError(step, reason) on any failure.
    t.feed = core.feed  # a target feeds the watchdog in every wait (fota/target.py)
    cur = rec.get("file")
    if not cur or cur["id"] != f.id:
        cur = rec["file"] = {"id": f.id, "step": "download", "done": 0}
    if cur["step"] == "download":
        sha = None
        try:
            start = t.create(f, cur["done"])
            log("download", "file %d, %d bytes%s" % (f.id, f.size, " from byte %d" % start if start else ""))
            sha = _receive(t, f, install.source(f, None, jobs.conn), cur, rec)
            new = t.close()
            from fota import ecdsa

            if not ecdsa.verify(key, sha, ecdsa.signature(f.sig)):
                raise FotaError("verify", "signature does not verify")
        except Exception as e:
            try:
                t.abort()
            except Exception as e2:
                log("download", "file %d: abort failed: %s" % (f.id, why(e2)))
            if isinstance(e, FotaError):
                raise
            raise FotaError("verify" if sha else "download", why(e))
        log("verify", "file %d: %d bytes, signature ok, version %s" % (f.id, f.size, new))
        cur["step"], cur["version"] = "activate", new
        core.save(rec)
    if cur["step"] == "activate":  # again after a power cut: it finishes what is left
        try:
            t.activate(f, cur["version"])
        except Exception as e:
            raise FotaError("activate", why(e))
        cur["step"] = "trial"
        core.save(rec)
        log("activate", "file %d: version %s activated" % (f.id, cur["version"]))
        core.progress(f.id, "activate", f.size, f.size)
    try:
        now, trial = t.state(f)  # a secondary: once it is back from its reset
        if now != cur["version"]:
            raise FotaError("activate", "reverted to %s after its test boot" % now)
        if trial:
            t.confirm(f)
            log("confirm", "file %d: version %s confirmed" % (f.id, now))
    except FotaError:
        raise
    except Exception as e:
        raise FotaError("confirm", why(e))
    core.progress(f.id, "done", f.size, f.size)
    return now


def _receive(t, f, source, cur, rec):
    # The whole file from its start through SHA-256 into the target (which skips what it
    # already holds) -> the digest; a broken connection starts it over, MAX_TRIES times.
    buf = bytearray(512)
    mv = memoryview(buf)
    tries = 0
    while True:
        try:
            r = source(0)
            try:
                if r.total != f.size:
                    raise HTTPError("server has %d bytes, document says %d" % (r.total, f.size))
                sha = hashlib.sha256()
                pos = saved = 0
                mark = f.size // core.CHUNK_LOG
                while pos < f.size:
                    n = r.readinto(buf)
                    if not n:
                        raise Broken("file ends at byte %d" % pos)
                    sha.update(mv[:n])
                    held = t.write(pos, mv[:n])
                    pos += n
                    if held - saved >= core.FILE_PROGRESS_EVERY:
                        cur["done"] = saved = held
                        core.save(rec)
                    if pos >= mark:
                        core.progress(f.id, "download", pos, f.size)
                        mark += f.size // core.CHUNK_LOG or 1
                    core.feed()
                return sha.digest()
            finally:
                r.close()
        except (Broken, OSError) as e:
            tries += 1
            if tries == core.MAX_TRIES:
                raise
            log("download", "file %d: connection lost (%s), retrying" % (f.id, why(e)))
