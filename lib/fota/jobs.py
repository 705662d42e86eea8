# AWS IoT Jobs over MQTT: the device side of the Jobs API.
#
# Every request carries a clientToken and waits, for a bounded time, for the accepted or
# rejected answer with that token; answers to other tokens (late ones) are dropped.
# notify and notify-next only raise a flag: changed() reports it once. Both are needed: a job
# queued behind one that is already next changes the pending list (notify), not the next one.
# Topics and payloads as AWS documents them ("Jobs device MQTT API operations").

import json
import os
import time

import binascii

TIMEOUT_MS = 10000


class JobsError(Exception):
    # A rejected request (code as AWS names it: VersionMismatch, ...) or no answer (Timeout).
    def __init__(self, code, message="", state=None):
        super().__init__("%s: %s" % (code, message) if message else code)
        self.code = code
        self.state = state  # executionState, when the service sends it (VersionMismatch)


class Job:
    # One job execution of this thing. describe() fills document, status, version.
    def __init__(self, jobs, job_id, summary=None):
        self.jobs = jobs
        self.id = job_id
        s = summary or {}
        self.version = s.get("versionNumber")
        self.execution_number = s.get("executionNumber")
        self.status = None
        self.status_details = {}
        self.document = None

    def describe(self):
        ex = self.jobs.describe(self.id, self.execution_number)
        self.status = ex.get("status")
        self.status_details = ex.get("statusDetails") or {}
        self.version = ex.get("versionNumber")
        self.execution_number = ex.get("executionNumber")
        self.document = ex.get("jobDocument")
        return self

    def update(self, status, status_details=None):
        st = self.jobs.update(self.id, status, status_details, self.version, self.execution_number)
        self.status = st.get("status", status)
        self.status_details = st.get("statusDetails", status_details or {})
        self.version = st.get("versionNumber", self.version)
        return self

    def __repr__(self):
        return "<Job %s %s v%s>" % (self.id, self.status, self.version)


class Jobs:
    def __init__(self, conn, timeout_ms=TIMEOUT_MS):
        self.conn = conn
        self.thing = conn.thing
        self.prefix = "$aws/things/%s/jobs/" % conn.thing
        self.timeout_ms = timeout_ms
        self.flag = False
        self.waiting = None  # clientToken of the request in flight
        self.reply = None  # (accepted?, payload) for it
        self.seq = 0
        self.tag = binascii.hexlify(os.urandom(3)).decode()
        self.ended = 0  # jobs this boot ended (a terminal status accepted)
        self.last = None  # (job id, status, statusDetails) of the last of them
        self.files = {}  # "file_<id>" -> version, from the statusDetails of every update
        conn.on(self.prefix, self._on_msg)
        for t in ("notify", "notify-next", "get/+", "start-next/+", "+/get/+", "+/update/+"):
            conn.subscribe(self.prefix + t)

    def changed(self):
        # True once after a notify or notify-next arrived (a job was added, ended or cancelled).
        if self.conn.connected():
            self.conn.check()
        f, self.flag = self.flag, False
        return f

    def wait(self, ms):
        # Handle incoming messages for up to ms milliseconds; return early (True) when a
        # notification arrives, so that a loop can sleep here and still react at once.
        deadline = time.ticks_add(time.ticks_ms(), ms)
        while not self.flag:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return False
            self.conn.wait(min(left, 1000))
        return True

    def list(self):
        # -> (in-progress jobs, queued jobs), oldest first, as Job objects.
        r = self._request("get", {})
        return ([Job(self, s["jobId"], s) for s in r.get("inProgressJobs") or ()],
                [Job(self, s["jobId"], s) for s in r.get("queuedJobs") or ()])

    def job(self, job_id):
        return Job(self, job_id).describe()

    def describe(self, job_id, execution_number=None):
        req = {"includeJobDocument": True}
        if execution_number is not None:
            req["executionNumber"] = execution_number
        r = self._request(job_id + "/get", req)
        if "execution" not in r:
            raise JobsError("ResourceNotFound", "no execution of " + job_id)
        return r["execution"]

    def start_next(self, status_details=None, step_timeout=None):
        # -> the next pending execution (now IN_PROGRESS), or None.
        req = {}
        if status_details:
            req["statusDetails"] = _details(status_details)
        if step_timeout:
            req["stepTimeoutInMinutes"] = step_timeout
        return self._request("start-next", req).get("execution")

    def update(self, job_id, status, status_details=None, expected_version=None,
               execution_number=None):
        # -> the executionState after the update.
        req = {"status": status, "includeJobExecutionState": True}
        if status_details is not None:
            req["statusDetails"] = _details(status_details)
        if expected_version is not None:
            req["expectedVersion"] = expected_version
        if execution_number is not None:
            req["executionNumber"] = execution_number
        st = self._request(job_id + "/update", req).get("executionState") or {}
        details = req.get("statusDetails") or {}
        for k in details:
            if k.startswith("file_"):
                self.files[k] = details[k]
        if status != "IN_PROGRESS":  # what the device's shadow says of its last job (fota/shadow.py)
            self.last = (job_id, status, details)
            self.ended += 1
        return st

    def _request(self, op, req):
        self.seq += 1
        token = "%s-%d" % (self.tag, self.seq)
        req["clientToken"] = token
        self.waiting, self.reply = token, None
        self.conn.publish(self.prefix + op, json.dumps(req))
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        try:
            while self.reply is None:
                left = time.ticks_diff(deadline, time.ticks_ms())
                if left <= 0:
                    raise JobsError("Timeout", "no answer to %s in %d ms" % (op, self.timeout_ms))
                self.conn.wait(min(left, 200))
        finally:
            self.waiting = None
        ok, r = self.reply
        if not ok:
            raise JobsError(r.get("code", "Rejected"), r.get("message", ""), r.get("executionState"))
        return r

    def _on_msg(self, topic, msg):
        rest = topic[len(self.prefix):]
        if rest == "notify" or rest == "notify-next":
            self.flag = True
            return
        try:
            r = json.loads(msg)
        except ValueError:
            return
        if not isinstance(r, dict) or r.get("clientToken") != self.waiting or self.waiting is None:
            return
        if rest.endswith("/accepted"):
            self.reply = (True, r)
        elif rest.endswith("/rejected"):
            self.reply = (False, r)


def _details(d):
    # statusDetails is a map of strings to strings of 1-1024 characters with no character of
    # Unicode's "other" categories (AWS rejects the update otherwise; error texts often carry
    # newlines, and documents anything). MicroPython has no Unicode tables: ASCII controls
    # become spaces, and whatever is not printable ASCII a "?".
    out = {}
    for k, v in d.items():
        v = "".join(c if " " <= c <= "~" else " " if c < " " else "?" for c in str(v)[:1024])
        out[str(k)] = v.strip() or "-"
    return out
