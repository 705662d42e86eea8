# The files step of a job of several files (fota.py's step table: "files"): the files with
# ids above 0, one after the other, each to the target the application registered for its id
# (fota.targets, lib/targets.py), before this processor's own firmware. Kept out of fota.py so
# that boards and jobs without such files do not load it.

import gc
import hashlib

import fota
import fotaupdate
from https import Broken, HTTPError


def run(jobs, job, fs, rec):
    # The job's files for the targets, one after the other, before this processor's own
    # firmware: each is written, checked, activated and its new version read back and
    # confirmed. -> {"file_<id>": version} when all are done; None when the job has ended.
    if not rec or rec.get("step") != "files":
        rec = {"job": job.id, "step": "files", "slot": -1, "tries": 0, "files": {}}
    rec["tries"] += 1
    if rec["tries"] > fota.MAX_TRIES:
        return fota._fail(job, "download", "interrupted %d times" % fota.MAX_TRIES) or None
    key = fotaupdate._signer()
    if key is None:
        return fota._fail(job, "check", "afr_ota images are code-signed: this device has no signer key") or None
    try:
        job.update("IN_PROGRESS", {"step": "files", "from_version": fota.version()})
    except Exception as e:
        fota.log("start", "job not started: %s" % e)
        return None
    fota._save(rec)
    for f in fs:
        name = "file_%d" % f.id
        if name in rec["files"]:
            continue  # done before a power cut
        gc.collect()  # each file's buffers and stream blocks into a heap in one piece
        try:
            rec["files"][name] = _one(jobs, f, fota.targets[f.id], key, rec)
        except fota.FotaError as e:
            if e.step == "download":
                jobs.conn.close()  # a stream read cut short (no memory) may leave half a message
            fota._reconnect(jobs)
            return fota._fail(job, e.step, "file %d: %s" % (f.id, e.reason)) or None
        rec.pop("file", None)
        fota._save(rec)
        details = {"step": "files", "from_version": fota.version()}
        details.update(rec["files"])
        try:
            job.update("IN_PROGRESS", details)  # how far the job got, for whoever watches it
        except Exception as e:
            fota.log("files", "could not report file %d: %s" % (f.id, e))
    return rec["files"]


def _one(jobs, f, t, key, rec):
    # One file into its target: create, write, close, signature, activate, state, confirm.
    # -> the version the target reports; FotaError(step, reason) on any failure.
    cur = rec.get("file")
    if not cur or cur["id"] != f.id:
        cur = rec["file"] = {"id": f.id, "step": "download", "done": 0}
    if cur["step"] == "download":
        sha = None
        try:
            start = t.create(f, cur["done"])
            fota.log("download", "file %d, %d bytes%s" % (f.id, f.size, " from byte %d" % start if start else ""))
            sha = _receive(t, f, fotaupdate._source(f, None, jobs.conn), cur, rec)
            new = t.close()
            import ecdsa

            if not ecdsa.verify(key, sha, ecdsa.signature(f.sig)):
                raise fota.FotaError("verify", "signature does not verify")
        except Exception as e:
            try:
                t.abort()
            except Exception as e2:
                fota.log("download", "file %d: abort failed: %s" % (f.id, fota._why(e2)))
            if isinstance(e, fota.FotaError):
                raise
            raise fota.FotaError("verify" if sha else "download", fota._why(e))
        fota.log("verify", "file %d: %d bytes, signature ok, version %s" % (f.id, f.size, new))
        cur["step"], cur["version"] = "activate", new
        fota._save(rec)
    if cur["step"] == "activate":  # again after a power cut: it finishes what is left
        try:
            t.activate(f, cur["version"])
        except Exception as e:
            raise fota.FotaError("activate", fota._why(e))
        cur["step"] = "trial"
        fota._save(rec)
        fota.log("activate", "file %d: version %s activated" % (f.id, cur["version"]))
        fota._progress(f.id, "activate", f.size, f.size)
    try:
        now, trial = t.state(f)  # a secondary: once it is back from its reset
        if now != cur["version"]:
            raise fota.FotaError("activate", "reverted to %s after its test boot" % now)
        if trial:
            t.confirm(f)
            fota.log("confirm", "file %d: version %s confirmed" % (f.id, now))
    except fota.FotaError:
        raise
    except Exception as e:
        raise fota.FotaError("confirm", fota._why(e))
    fota._progress(f.id, "done", f.size, f.size)
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
                mark = f.size // fota.CHUNK_LOG
                while pos < f.size:
                    n = r.readinto(buf)
                    if not n:
                        raise Broken("file ends at byte %d" % pos)
                    sha.update(mv[:n])
                    held = t.write(pos, mv[:n])
                    pos += n
                    if held - saved >= fota.FILE_PROGRESS_EVERY:
                        cur["done"] = saved = held
                        fota._save(rec)
                    if pos >= mark:
                        fota._progress(f.id, "download", pos, f.size)
                        mark += f.size // fota.CHUNK_LOG or 1
                    fota._feed()
                return sha.digest()
            finally:
                r.close()
        except (Broken, OSError) as e:
            tries += 1
            if tries == fota.MAX_TRIES:
                raise
            fota.log("download", "file %d: connection lost (%s), retrying" % (f.id, fota._why(e)))
