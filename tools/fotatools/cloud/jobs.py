"""The jobs service of the AWS IoT stand-in.

`JobsEngine` holds the rules: the Jobs device MQTT API (GetPendingJobExecutions,
StartNextPendingJobExecution, DescribeJobExecution, UpdateJobExecution, the notify and
notify-next events) and the control plane (things, thing groups, CreateJob, DescribeJob,
CancelJob, CancelJobExecution, DeleteJob, ...), with rollouts, abort criteria, retries, step and
in-progress timeouts. `JobsService` connects the engine to the broker as an MQTT client with its
own certificate and runs the timer that ends overdue executions and releases rollouts; it also
serves MQTT-based file delivery (`streams.StreamsEngine`) and device shadows
(`shadow.ShadowEngine`) on the same connection.

Timing: one "minute" of the Jobs API (step timeouts, in-progress timeouts, rollout rates) is
`minute` seconds, 60 unless the environment variable FOTA_CLOUD_MINUTE says otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import ssl
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .db import Database
from .store import StoreError, parse_s3_url

log = logging.getLogger("fotatools.cloud.jobs")

REGION = "local"
ACCOUNT = "000000000000"
ARN_PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}"
SERVICE_CN = "jobs.service"  # the jobs service's certificate CN: never a valid thing name

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED")
PENDING = ("QUEUED", "IN_PROGRESS")
ALL_STATES = PENDING + TERMINAL
DEVICE_STATES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED")

JOB_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
THING_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}\Z")
DETAIL_KEY_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}\Z")
ARN_RE = re.compile(r"^arn:aws:iot:[a-z0-9-]*:\d*:(thing|thinggroup)/([a-zA-Z0-9:_-]{1,128})\Z")
REASON_CODE_RE = re.compile(r"^[A-Z0-9_]{1,128}\Z")
PLACEHOLDER_RE = re.compile(r"\$\{aws:iot:s3-presigned-url:([^}]*)\}")
MAX_DOCUMENT = 32768
MAX_CLIENT_TOKEN = 64
MAX_DETAIL_VALUE = 1024
MAX_STEP_MINUTES = 10080
MAX_NOTIFIED = 10  # a notify (ListNotification) lists at most this many; get-pending lists all

COUNT_FIELDS = {
    "CANCELED": "numberOfCanceledThings", "SUCCEEDED": "numberOfSucceededThings",
    "FAILED": "numberOfFailedThings", "REJECTED": "numberOfRejectedThings",
    "QUEUED": "numberOfQueuedThings", "IN_PROGRESS": "numberOfInProgressThings",
    "REMOVED": "numberOfRemovedThings", "TIMED_OUT": "numberOfTimedOutThings",
}


def minute_seconds() -> float:
    """Seconds in one Jobs API minute (FOTA_CLOUD_MINUTE, default 60)."""
    raw = os.environ.get("FOTA_CLOUD_MINUTE", "60")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"FOTA_CLOUD_MINUTE must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 3600:
        raise ValueError("FOTA_CLOUD_MINUTE must be in (0, 3600]")
    return value


def thing_arn(name: str) -> str:
    return f"{ARN_PREFIX}:thing/{name}"


def group_arn(name: str) -> str:
    return f"{ARN_PREFIX}:thinggroup/{name}"


def job_arn(job_id: str) -> str:
    return f"{ARN_PREFIX}:job/{job_id}"


class RequestRejected(Exception):
    """A device request answered on .../rejected."""

    def __init__(self, code: str, message: str, execution: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.execution = execution


class ControlError(Exception):
    """A control-plane call failed; `kind` is the AWS exception name."""

    STATUS = {"InvalidRequestException": 400, "ResourceNotFoundException": 404,
              "ResourceAlreadyExistsException": 409, "InvalidStateTransitionException": 409,
              "VersionConflictException": 409, "LimitExceededException": 410,
              "ConflictException": 409, "RequestEntityTooLargeException": 413,
              "UnsupportedDocumentEncodingException": 415}

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def status(self) -> int:
        return self.STATUS.get(self.kind, 400)


def _invalid(message: str) -> ControlError:
    return ControlError("InvalidRequestException", message)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def has_control(text: str) -> bool:
    """Whether the text has a character of Unicode's category C (control, format, private use,
    unassigned, surrogate): what AWS's patterns [^\\p{C}]+ refuse."""
    return any(unicodedata.category(c).startswith("C") for c in text)


def check_status_details(details: Any) -> dict[str, str]:
    """Validate a statusDetails map as AWS does; raise ValueError with the reason."""
    if not isinstance(details, dict):
        raise ValueError("statusDetails must be an object of string values")
    for k, v in details.items():
        if not DETAIL_KEY_RE.match(k):
            raise ValueError(f"statusDetails key {k!r} must be 1-128 characters of [a-zA-Z0-9:_-]")
        if not isinstance(v, str):
            raise ValueError(f"statusDetails value of {k!r} must be a string")
        if not 1 <= len(v) <= MAX_DETAIL_VALUE:
            raise ValueError(f"statusDetails value of {k!r} must be 1-{MAX_DETAIL_VALUE} characters")
        if has_control(v):
            raise ValueError(f"statusDetails value of {k!r} must not contain control characters")
    return dict(details)


def _job_text(params: dict[str, Any], key: str) -> str | None:
    """A job's description or a cancel's comment, as AWS's API reference gives them: at most
    2028 characters, pattern [^\\p{C}]+ (so at least one, and no control, format, private-use
    or unassigned character); None when not given."""
    v = params.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not 1 <= len(v) <= 2028 \
            or has_control(v):
        raise _invalid(f"{key} must be 1 to 2028 characters, none of them a control character")
    return v


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, str):
        return PLACEHOLDER_RE.findall(value)
    if isinstance(value, list):
        return [u for v in value for u in _placeholders(v)]
    if isinstance(value, dict):
        return [u for v in value.values() for u in _placeholders(v)]
    return []


@dataclass
class _Snapshot:
    pending: tuple[tuple[str, int], ...]
    next: tuple[str, int] | None


class JobsEngine:
    """State and rules of AWS IoT Jobs on top of the SQLite database."""

    def __init__(self, db: Database, presign: Callable[[str, str, int], str],
                 publish: Callable[[str, bytes], None] | None = None,
                 minute: float | None = None, clock: Callable[[], float] = time.time):
        self.db = db
        self.presign = presign
        self.publish = publish or (lambda topic, payload: None)
        self.minute = minute_seconds() if minute is None else float(minute)
        self.clock = clock
        self.lock = db.lock
        self._outbox: list[tuple[str, bytes]] = []

    # ======================================================================================
    # helpers
    # ======================================================================================
    def _send(self, topic: str, body: dict[str, Any]) -> None:
        self._outbox.append((topic, json.dumps(body, separators=(",", ":")).encode()))

    def _flush(self) -> None:
        out, self._outbox = self._outbox, []
        for topic, payload in out:
            try:
                self.publish(topic, payload)
            except Exception:  # a closed connection must not lose the state change
                log.exception("publish to %s failed", topic)

    def _job(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.get_job(job_id)
        if row:
            row["config"] = json.loads(row["config"])
            row["targets"] = json.loads(row["targets"])
        return row

    def resolve_document(self, document: dict[str, Any], expires_in: int) -> dict[str, Any]:
        """The document as a device receives it: every presigned-URL placeholder replaced."""
        def sub(m: re.Match[str]) -> str:
            try:
                bucket, key = parse_s3_url(m.group(1))
            except StoreError:
                return m.group(0)
            return self.presign(bucket, key, expires_in)

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                return PLACEHOLDER_RE.sub(sub, v) if "${aws:iot:s3-presigned-url:" in v else v
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            return v

        return walk(document)

    def _device_document(self, job: dict[str, Any]) -> dict[str, Any]:
        expires = int(job["config"].get("presignedUrlConfig", {}).get("expiresInSec", 3600))
        return self.resolve_document(json.loads(job["document"]), expires)

    def _summary(self, e: dict[str, Any]) -> dict[str, Any]:
        s: dict[str, Any] = {"jobId": e["job_id"], "queuedAt": int(e["queued_at"])}
        if e["started_at"] is not None:
            s["startedAt"] = int(e["started_at"])
        s.update(lastUpdatedAt=int(e["last_updated_at"]), executionNumber=e["execution_number"],
                 versionNumber=e["version"])
        return s

    def _state(self, e: dict[str, Any]) -> dict[str, Any]:
        st: dict[str, Any] = {"status": e["status"]}
        details = json.loads(e["status_details"])
        if details:
            st["statusDetails"] = details
        st["versionNumber"] = e["version"]
        return st

    def _seconds_left(self, e: dict[str, Any]) -> int | None:
        deadlines = [d for d in (e["step_deadline"], e["timeout_deadline"]) if d is not None]
        if e["status"] != "IN_PROGRESS" or not deadlines:
            return None
        # reported in API seconds: a scaled minute keeps the device's view consistent
        left = (min(deadlines) - self.clock()) * 60.0 / self.minute
        return max(0, int(left))

    def _execution(self, e: dict[str, Any], job: dict[str, Any] | None,
                   include_document: bool = True) -> dict[str, Any]:
        x: dict[str, Any] = {"jobId": e["job_id"], "thingName": e["thing_name"]}
        if include_document and job is not None:
            x["jobDocument"] = self._device_document(job)
        x["status"] = e["status"]
        details = json.loads(e["status_details"])
        if details:
            x["statusDetails"] = details
        x["queuedAt"] = int(e["queued_at"])
        if e["started_at"] is not None:
            x["startedAt"] = int(e["started_at"])
        x.update(lastUpdatedAt=int(e["last_updated_at"]), versionNumber=e["version"],
                 executionNumber=e["execution_number"])
        left = self._seconds_left(e)
        if left is not None:
            x["approximateSecondsBeforeTimedOut"] = left
        return x

    # -- notifications ----------------------------------------------------------------------
    def _snapshot(self, thing: str) -> _Snapshot:
        pending = self.db.pending_for_thing(thing)
        keys = tuple((e["job_id"], e["execution_number"]) for e in pending)
        return _Snapshot(pending=tuple(sorted(keys)), next=keys[0] if keys else None)

    def _notify_changes(self, before: dict[str, _Snapshot]) -> None:
        """Publish notify / notify-next for every thing whose pending list / next changed."""
        now = int(self.clock())
        for thing, old in before.items():
            pending = self.db.pending_for_thing(thing)
            keys = tuple((e["job_id"], e["execution_number"]) for e in pending)
            base = f"$aws/things/{thing}/jobs"
            if tuple(sorted(keys)) != old.pending:
                jobs: dict[str, list[dict[str, Any]]] = {}
                for e in pending[:MAX_NOTIFIED]:
                    jobs.setdefault(e["status"], []).append(self._summary(e))
                self._send(f"{base}/notify", {"timestamp": now, "jobs": jobs})
            new_next = keys[0] if keys else None
            if new_next != old.next:
                body: dict[str, Any] = {"timestamp": now}
                if pending:
                    body["execution"] = self._execution(pending[0], self._job(pending[0]["job_id"]))
                self._send(f"{base}/notify-next", body)

    # ======================================================================================
    # device side: the Jobs MQTT API
    # ======================================================================================
    def handle(self, topic: str, payload: bytes) -> None:
        """Answer one request published by a device (publishes the replies)."""
        parts = topic.split("/")
        if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "jobs":
            return
        thing, rest = parts[2], parts[4:]
        if rest[-1] in ("accepted", "rejected") or rest in (["notify"], ["notify-next"]):
            return  # replies and events: published by this service, not requests
        with self.lock:
            try:
                self._handle(thing, rest, payload, topic)
            finally:
                self._flush()

    def _handle(self, thing: str, rest: list[str], payload: bytes, topic: str) -> None:
        token: str | None = None
        try:
            if rest == ["get"]:
                op = "get"
            elif rest == ["start-next"]:
                op = "start-next"
            elif len(rest) == 2 and rest[1] == "get" and (rest[0] == "$next" or JOB_ID_RE.match(rest[0])):
                op = "describe"
            elif len(rest) == 2 and rest[1] == "update" and JOB_ID_RE.match(rest[0]):
                op = "update"
            else:
                raise RequestRejected("InvalidTopic", f"Topic {topic} does not map to any Jobs API")
            try:
                text = payload.decode("utf-8")
                req = json.loads(text) if text.strip() else {}
            except (UnicodeDecodeError, ValueError):
                raise RequestRejected("InvalidJson", "The request payload is not valid UTF-8 JSON") from None
            if not isinstance(req, dict):
                raise RequestRejected("InvalidRequest", "The request payload must be a JSON object")
            if "clientToken" in req:
                t = req["clientToken"]
                if not isinstance(t, str) or not 1 <= len(t) <= MAX_CLIENT_TOKEN:
                    raise RequestRejected("InvalidRequest",
                                          f"clientToken must be a string of 1-{MAX_CLIENT_TOKEN} characters")
                token = t
            if not THING_RE.match(thing):
                raise RequestRejected("InvalidRequest", f"Invalid thing name {thing!r}")
            if op == "get":
                body = self._get_pending(thing)
            elif op == "start-next":
                body = self._start_next(thing, req)
            elif op == "describe":
                body = self._describe(thing, rest[0], req)
            else:
                body = self._update(thing, rest[0], req)
            body["timestamp"] = int(self.clock())
            if token is not None:
                body["clientToken"] = token
            self._outbox.insert(0, (topic + "/accepted", json.dumps(body, separators=(",", ":")).encode()))
        except RequestRejected as r:
            rej: dict[str, Any] = {"code": r.code, "message": r.message}
            if token is not None:
                rej["clientToken"] = token
            rej["timestamp"] = int(self.clock())
            if r.execution is not None:
                rej["executionState"] = self._state(r.execution)
            self._outbox.insert(0, (topic + "/rejected", json.dumps(rej, separators=(",", ":")).encode()))
        except Exception as e:  # never leave a device without an answer
            log.exception("internal error on %s", topic)
            rej = {"code": "InternalError", "message": f"Internal error: {type(e).__name__}"}
            if token is not None:
                rej["clientToken"] = token
            rej["timestamp"] = int(self.clock())
            self._outbox.insert(0, (topic + "/rejected", json.dumps(rej, separators=(",", ":")).encode()))

    @staticmethod
    def _opt_bool(req: dict[str, Any], name: str, default: bool) -> bool:
        v = req.get(name, default)
        if not isinstance(v, bool):
            raise RequestRejected("InvalidRequest", f"{name} must be a boolean")
        return v

    @staticmethod
    def _opt_int(req: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
        if name not in req:
            return None
        v = req[name]
        if not _is_int(v) or v < low or (high is not None and v > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise RequestRejected("InvalidRequest", f"{name} must be an integer {bound}")
        return v

    def _step_timeout(self, req: dict[str, Any]) -> int | None:
        if "stepTimeoutInMinutes" not in req:
            return None
        v = req["stepTimeoutInMinutes"]
        if not _is_int(v) or not (v == -1 or 1 <= v <= MAX_STEP_MINUTES):
            raise RequestRejected("InvalidRequest",
                                  f"stepTimeoutInMinutes must be -1 or an integer 1..{MAX_STEP_MINUTES}")
        return v

    def _details(self, req: dict[str, Any]) -> dict[str, str] | None:
        if "statusDetails" not in req:
            return None
        try:
            return check_status_details(req["statusDetails"])
        except ValueError as e:
            raise RequestRejected("InvalidRequest", str(e)) from None

    def _get_pending(self, thing: str) -> dict[str, Any]:
        pending = self.db.pending_for_thing(thing)
        return {
            "inProgressJobs": [self._summary(e) for e in pending if e["status"] == "IN_PROGRESS"],
            "queuedJobs": [self._summary(e) for e in pending if e["status"] == "QUEUED"],
        }

    def _start(self, e: dict[str, Any], job: dict[str, Any], now: float, details: dict[str, str] | None,
               step: int | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": "IN_PROGRESS", "version": e["version"] + 1,
                                  "last_updated_at": now}
        if e["started_at"] is None:
            fields["started_at"] = now
        if details is not None:
            fields["status_details"] = json.dumps(details)
        timeout = job["config"].get("timeoutConfig", {}).get("inProgressTimeoutInMinutes")
        if timeout and e["timeout_deadline"] is None:
            fields["timeout_deadline"] = now + timeout * self.minute
        if step is not None:
            fields["step_deadline"] = None if step == -1 else now + step * self.minute
        self.db.update_execution(e["seq"], **fields)
        return self.db.get_execution_by_seq(e["seq"]) or e

    def _start_next(self, thing: str, req: dict[str, Any]) -> dict[str, Any]:
        details = self._details(req)
        step = self._step_timeout(req)
        before = {thing: self._snapshot(thing)}
        with self.db.transaction():
            pending = self.db.pending_for_thing(thing)
            if not pending:
                return {}
            e = pending[0]
            job = self._job(e["job_id"])
            if e["status"] == "QUEUED" and job is not None:
                e = self._start(e, job, self.clock(), details, step)
        self._notify_changes(before)
        return {"execution": self._execution(e, job)}

    def _describe(self, thing: str, job_id: str, req: dict[str, Any]) -> dict[str, Any]:
        number = self._opt_int(req, "executionNumber", 1)
        include_doc = self._opt_bool(req, "includeJobDocument", True)
        if job_id == "$next":
            pending = self.db.pending_for_thing(thing)
            if not pending:
                return {}
            e = pending[0]
        else:
            e = self.db.get_execution(job_id, thing, number)
            if e is None:
                raise RequestRejected("ResourceNotFound",
                                      f"Job execution {job_id} for thing {thing} does not exist")
            if e["status"] in TERMINAL:
                raise RequestRejected("TerminalStateReached",
                                      f"Job execution {job_id} for thing {thing} is in terminal state "
                                      f"{e['status']}")
        return {"execution": self._execution(e, self._job(e["job_id"]), include_doc)}

    def _update(self, thing: str, job_id: str, req: dict[str, Any]) -> dict[str, Any]:
        if "status" not in req:
            raise RequestRejected("InvalidRequest", "status is required")
        status = req["status"]
        if not isinstance(status, str) or status not in ALL_STATES:
            raise RequestRejected("InvalidRequest",
                                  f"status must be one of {', '.join(DEVICE_STATES)}")
        details = self._details(req)
        step = self._step_timeout(req)
        expected = self._opt_int(req, "expectedVersion", 0)
        number = self._opt_int(req, "executionNumber", 1)
        include_state = self._opt_bool(req, "includeJobExecutionState", False)
        include_doc = self._opt_bool(req, "includeJobDocument", False)
        before = {thing: self._snapshot(thing)}
        with self.db.transaction():
            e = self.db.get_execution(job_id, thing, number)
            job = self._job(job_id)
            if e is None or job is None:
                raise RequestRejected("ResourceNotFound",
                                      f"Job execution {job_id} for thing {thing} does not exist")
            if expected is not None and expected != e["version"]:
                raise RequestRejected("VersionMismatch",
                                      f"Expected version {expected} but the execution is at version "
                                      f"{e['version']}", e)
            if e["status"] in TERMINAL:
                raise RequestRejected("InvalidStateTransition",
                                      f"Job execution is in terminal state {e['status']} and cannot be "
                                      f"updated to {status}", e)
            if status not in DEVICE_STATES:
                raise RequestRejected("InvalidStateTransition",
                                      f"Cannot update a job execution from {e['status']} to {status}", e)
            now = self.clock()
            if status == "IN_PROGRESS":
                e = self._start(e, job, now, details, step)
            else:
                fields: dict[str, Any] = {"status": status, "version": e["version"] + 1,
                                          "last_updated_at": now, "step_deadline": None,
                                          "timeout_deadline": None}
                if details is not None:
                    fields["status_details"] = json.dumps(details)
                self.db.update_execution(e["seq"], **fields)
                e = self.db.get_execution_by_seq(e["seq"]) or e
                self._after_terminal(job, e, now, before)
        self._notify_changes(before)
        body: dict[str, Any] = {}
        if include_state:
            body["executionState"] = self._state(e)
        if include_doc:
            body["jobDocument"] = self._device_document(job)
        return body

    # ======================================================================================
    # what follows an execution's end: retries, abort, completion
    # ======================================================================================
    def _after_terminal(self, job: dict[str, Any], e: dict[str, Any], now: float,
                        before: dict[str, _Snapshot]) -> None:
        if e["status"] == "SUCCEEDED" and job["status"] == "IN_PROGRESS":
            self.db.update_job(job["job_id"], succeeded_since_increase=job["succeeded_since_increase"] + 1)
        if e["status"] in ("FAILED", "TIMED_OUT") and job["status"] == "IN_PROGRESS":
            self._maybe_retry(job, e, now)
        if job["status"] == "IN_PROGRESS":
            self._check_abort(job, now, before)
        self._check_complete(job["job_id"], now)

    def _maybe_retry(self, job: dict[str, Any], e: dict[str, Any], now: float) -> None:
        criteria = job["config"].get("jobExecutionsRetryConfig", {}).get("criteriaList", [])
        allowed = 0
        for c in criteria:
            if c["failureType"] in (e["status"], "ALL"):
                allowed = max(allowed, int(c["numberOfRetries"]))
        if e["retry_attempt"] < allowed:
            self._new_execution(job, e["thing_name"], now, number=e["execution_number"] + 1,
                                retry=e["retry_attempt"] + 1)

    def _check_abort(self, job: dict[str, Any], now: float, before: dict[str, _Snapshot]) -> None:
        criteria = job["config"].get("abortConfig", {}).get("criteriaList", [])
        if not criteria:
            return
        counts = self.db.terminal_counts_all(job["job_id"])
        executed = sum(counts.get(s, 0) for s in ("SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED"))
        for c in criteria:
            kinds = ("FAILED", "REJECTED", "TIMED_OUT") if c["failureType"] == "ALL" else (c["failureType"],)
            failures = sum(counts.get(k, 0) for k in kinds)
            if executed >= int(c["minNumberOfExecutedThings"]) and executed and \
                    100.0 * failures / executed >= float(c["thresholdPercentage"]):
                log.info("job %s aborted: %d of %d executions %s", job["job_id"], failures, executed,
                         c["failureType"])
                self._cancel(job, now, force=False, reason_code="ABORTED",
                             comment=f"Job aborted: {failures} of {executed} executed things "
                                     f"{c['failureType']} (threshold {c['thresholdPercentage']}%)",
                             before=before)
                return

    def _check_complete(self, job_id: str, now: float) -> None:
        job = self._job(job_id)
        if job is None or job["status"] != "IN_PROGRESS" or job["target_selection"] != "SNAPSHOT":
            return
        if self.db.count_queued_targets(job_id):
            return
        counts = self.db.status_counts(job_id)
        if counts.get("QUEUED", 0) or counts.get("IN_PROGRESS", 0):
            return
        self.db.update_job(job_id, status="COMPLETED", completed_at=now, last_updated_at=now)

    # ======================================================================================
    # control plane: things and groups
    # ======================================================================================
    @staticmethod
    def _check_thing_name(name: Any) -> str:
        if not isinstance(name, str) or not THING_RE.match(name):
            raise _invalid(f"invalid thing name {name!r}: 1-128 characters of [a-zA-Z0-9:_-]")
        return name

    def create_thing(self, name: str) -> dict[str, Any]:
        self._check_thing_name(name)
        with self.lock:
            self.db.add_thing(name, self.clock())
        return {"thingName": name, "thingArn": thing_arn(name)}

    def describe_thing(self, name: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.get_thing(name)
            if row is None:
                raise ControlError("ResourceNotFoundException", f"Thing {name} does not exist")
            return {"thingName": name, "thingArn": thing_arn(name), "createdAt": row["created_at"],
                    "thingGroups": self.db.groups_of(name),
                    "certificates": [c["certificate_id"] for c in self.db.certificates_of(name)]}

    def list_things(self) -> dict[str, Any]:
        with self.lock:
            return {"things": [{"thingName": n, "thingArn": thing_arn(n)} for n in self.db.list_things()]}

    def add_certificate(self, certificate_id: str, thing: str, pem: str) -> None:
        with self.lock:
            self.db.add_certificate(certificate_id, thing, pem, self.clock())

    def create_thing_group(self, name: str) -> dict[str, Any]:
        if not isinstance(name, str) or not THING_RE.match(name):
            raise _invalid(f"invalid thing group name {name!r}: 1-128 characters of [a-zA-Z0-9:_-]")
        with self.lock:
            self.db.add_group(name, self.clock())
        return {"thingGroupName": name, "thingGroupArn": group_arn(name)}

    def _require_group(self, name: str) -> None:
        if self.db.get_group(name) is None:
            raise ControlError("ResourceNotFoundException", f"Thing group {name} does not exist")

    def _require_thing(self, name: str) -> None:
        if self.db.get_thing(name) is None:
            raise ControlError("ResourceNotFoundException", f"Thing {name} does not exist")

    def add_thing_to_group(self, group: str, thing: str) -> dict[str, Any]:
        return self._membership(group, thing, add=True)

    def remove_thing_from_group(self, group: str, thing: str) -> dict[str, Any]:
        return self._membership(group, thing, add=False)

    def _membership(self, group: str, thing: str, add: bool) -> dict[str, Any]:
        """Add a thing to a group or remove it; a continuous job follows the change."""
        with self.lock:
            try:
                self._require_group(group)
                self._require_thing(thing)
                before = {thing: self._snapshot(thing)}
                with self.db.transaction():
                    if add and self.db.add_member(group, thing):
                        self._continuous_add(group, thing, before)
                    elif not add and self.db.remove_member(group, thing):
                        self._continuous_remove(group, thing)
                self._notify_changes(before)
            finally:
                self._flush()
        return {}

    def describe_thing_group(self, name: str) -> dict[str, Any]:
        with self.lock:
            self._require_group(name)
            return {"thingGroupName": name, "thingGroupArn": group_arn(name)}

    def list_thing_groups(self) -> dict[str, Any]:
        with self.lock:
            return {"thingGroups": [{"groupName": g, "groupArn": group_arn(g)}
                                    for g in self.db.list_groups()]}

    def list_things_in_group(self, group: str) -> dict[str, Any]:
        with self.lock:
            self._require_group(group)
            return {"things": self.db.group_members(group)}

    def _continuous_add(self, group: str, thing: str, before: dict[str, _Snapshot]) -> None:
        """A thing joined a group: CONTINUOUS jobs targeting the group now target it too."""
        arn = group_arn(group)
        now = self.clock()
        for row in self.db.active_jobs():
            job = self._job(row["job_id"])
            if job is None or job["target_selection"] != "CONTINUOUS" or arn not in job["targets"]:
                continue
            if self.db.get_execution(job["job_id"], thing) is not None:
                continue
            self._target(job, [thing], now)

    def _continuous_remove(self, group: str, thing: str) -> None:
        """A thing left a group: its QUEUED executions of CONTINUOUS jobs through it are REMOVED."""
        arn = group_arn(group)
        now = self.clock()
        still = {group_arn(g) for g in self.db.groups_of(thing)} | {thing_arn(thing)}
        for row in self.db.active_jobs():
            job = self._job(row["job_id"])
            if job is None or job["target_selection"] != "CONTINUOUS" or arn not in job["targets"]:
                continue
            if still & set(job["targets"]):
                continue
            if self.db.drop_target(job["job_id"], thing):  # not queued yet: no longer a target
                self.db.drop_job_target(job["job_id"], thing)
            e = self.db.get_execution(job["job_id"], thing)
            if e is not None and e["status"] == "QUEUED":
                self.db.update_execution(e["seq"], status="REMOVED", version=e["version"] + 1,
                                         last_updated_at=now)

    # ======================================================================================
    # control plane: jobs
    # ======================================================================================
    def _validate_job_config(self, params: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {}
        rollout = params.get("jobExecutionsRolloutConfig")
        if rollout is not None:
            if not isinstance(rollout, dict):
                raise _invalid("jobExecutionsRolloutConfig must be an object")
            out: dict[str, Any] = {}
            if "maximumPerMinute" in rollout:
                m = rollout["maximumPerMinute"]
                if not _is_int(m) or not 1 <= m <= 1000:
                    raise _invalid("maximumPerMinute must be an integer 1..1000")
                out["maximumPerMinute"] = m
            if "exponentialRate" in rollout:
                x = rollout["exponentialRate"]
                if not isinstance(x, dict):
                    raise _invalid("exponentialRate must be an object")
                base, factor = x.get("baseRatePerMinute"), x.get("incrementFactor")
                crit = x.get("rateIncreaseCriteria")
                if not _is_int(base) or not 1 <= base <= 1000:
                    raise _invalid("exponentialRate.baseRatePerMinute must be an integer 1..1000")
                # "up to one digit after the decimal (for example, 1.5, but not 1.55)"
                if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                        or not 1.1 <= factor <= 5 or round(factor, 1) != factor:
                    raise _invalid("exponentialRate.incrementFactor must be 1.1..5 with at most "
                                   "one digit after the decimal")
                if not isinstance(crit, dict) or len(crit) != 1 or not (
                        _is_int(crit.get("numberOfNotifiedThings")) and crit["numberOfNotifiedThings"] >= 1
                        or _is_int(crit.get("numberOfSucceededThings")) and crit["numberOfSucceededThings"] >= 1):
                    raise _invalid("rateIncreaseCriteria needs one of numberOfNotifiedThings or "
                                   "numberOfSucceededThings (>= 1)")
                out["exponentialRate"] = {"baseRatePerMinute": base, "incrementFactor": float(factor),
                                          "rateIncreaseCriteria": dict(crit)}
            config["jobExecutionsRolloutConfig"] = out
        abort = params.get("abortConfig")
        if abort is not None:
            crit_list = abort.get("criteriaList") if isinstance(abort, dict) else None
            if not isinstance(crit_list, list) or not crit_list:
                raise _invalid("abortConfig.criteriaList must be a non-empty list")
            checked = []
            for c in crit_list:
                if not isinstance(c, dict):
                    raise _invalid("abort criteria must be objects")
                if c.get("failureType") not in ("FAILED", "REJECTED", "TIMED_OUT", "ALL"):
                    raise _invalid("abort failureType must be FAILED, REJECTED, TIMED_OUT or ALL")
                if c.get("action") != "CANCEL":
                    raise _invalid("abort action must be CANCEL")
                p = c.get("thresholdPercentage")
                if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 100 \
                        or round(p, 2) != p:
                    raise _invalid("thresholdPercentage must be 0..100 with at most two decimals")
                n = c.get("minNumberOfExecutedThings")
                if not _is_int(n) or n < 1:
                    raise _invalid("minNumberOfExecutedThings must be an integer >= 1")
                checked.append({"failureType": c["failureType"], "action": "CANCEL",
                                "thresholdPercentage": float(p), "minNumberOfExecutedThings": n})
            config["abortConfig"] = {"criteriaList": checked}
        timeout = params.get("timeoutConfig")
        if timeout is not None:
            t = timeout.get("inProgressTimeoutInMinutes") if isinstance(timeout, dict) else None
            if not _is_int(t) or not 1 <= t <= MAX_STEP_MINUTES:
                raise _invalid(f"inProgressTimeoutInMinutes must be an integer 1..{MAX_STEP_MINUTES}")
            config["timeoutConfig"] = {"inProgressTimeoutInMinutes": t}
        presigned = params.get("presignedUrlConfig")
        if presigned is not None:
            if not isinstance(presigned, dict):
                raise _invalid("presignedUrlConfig must be an object")
            exp = presigned.get("expiresInSec", 3600)
            if not _is_int(exp) or not 60 <= exp <= 3600:
                raise _invalid("presignedUrlConfig.expiresInSec must be an integer 60..3600")
            config["presignedUrlConfig"] = {"expiresInSec": exp}
            if "roleArn" in presigned:
                config["presignedUrlConfig"]["roleArn"] = str(presigned["roleArn"])
        retry = params.get("jobExecutionsRetryConfig")
        if retry is not None:
            crit_list = retry.get("criteriaList") if isinstance(retry, dict) else None
            if not isinstance(crit_list, list) or not crit_list:
                raise _invalid("jobExecutionsRetryConfig.criteriaList must be a non-empty list")
            checked = []
            for c in crit_list:
                if not isinstance(c, dict) or c.get("failureType") not in ("FAILED", "TIMED_OUT", "ALL"):
                    raise _invalid("retry failureType must be FAILED, TIMED_OUT or ALL")
                n = c.get("numberOfRetries")
                if not _is_int(n) or not 0 <= n <= 10:
                    raise _invalid("numberOfRetries must be an integer 0..10")
                checked.append({"failureType": c["failureType"], "numberOfRetries": n})
            config["jobExecutionsRetryConfig"] = {"criteriaList": checked}
        return config

    @staticmethod
    def _parse_document(document: Any) -> tuple[str, Any]:
        if isinstance(document, (dict, list)):
            text = json.dumps(document, separators=(",", ":"))
        elif isinstance(document, str):
            text = document
        else:
            raise _invalid("document must be a JSON object or its text")
        if len(text.encode("utf-8")) > MAX_DOCUMENT:
            raise _invalid(f"document is larger than {MAX_DOCUMENT} bytes")
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise _invalid(f"document is not valid JSON: {e}") from None
        # AWS IoT documents the job document as JSON text of at most 32 KB, nothing narrower:
        # any JSON value is taken, so that devices meet documents that are not objects too.
        for url in _placeholders(doc):
            try:
                parse_s3_url(url)
            except StoreError as e:
                raise _invalid(f"presigned-URL placeholder has no S3 URL: {e}") from None
        return text, doc

    def _resolve_targets(self, targets: Any) -> tuple[list[str], list[str]]:
        """(normalised target ARNs, things they cover now, in order, without duplicates)."""
        if not isinstance(targets, list) or not targets:
            raise _invalid("targets must be a non-empty list of thing or thing-group ARNs")
        arns: list[str] = []
        things: list[str] = []
        seen: set[str] = set()
        for arn in targets:
            m = ARN_RE.match(arn) if isinstance(arn, str) else None
            if not m:
                raise _invalid(f"invalid target {arn!r}: expected a thing or thing-group ARN")
            kind, name = m.groups()
            if kind == "thing":
                self._require_thing(name)
                members = [name]
                arns.append(thing_arn(name))
            else:
                self._require_group(name)
                members = self.db.group_members(name)
                arns.append(group_arn(name))
            for t in members:
                if t not in seen:
                    seen.add(t)
                    things.append(t)
        return list(dict.fromkeys(arns)), things

    def create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateJob, taking boto3's parameter names."""
        job_id = params.get("jobId")
        if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
            raise _invalid(f"invalid jobId {job_id!r}: 1-64 characters of [a-zA-Z0-9_-]")
        if "document" not in params:
            raise _invalid("document is required")
        text, _ = self._parse_document(params["document"])
        selection = params.get("targetSelection", "SNAPSHOT")
        if selection not in ("SNAPSHOT", "CONTINUOUS"):
            raise _invalid("targetSelection must be SNAPSHOT or CONTINUOUS")
        description = _job_text(params, "description")
        config = self._validate_job_config(params)
        with self.lock:
            try:
                if self.db.get_job(job_id) is not None:
                    raise ControlError("ResourceAlreadyExistsException", f"Job {job_id} already exists")
                arns, things = self._resolve_targets(params.get("targets"))
                now = self.clock()
                rollout = config.get("jobExecutionsRolloutConfig", {})
                rate = None
                if "exponentialRate" in rollout:
                    rate = float(min(rollout["exponentialRate"]["baseRatePerMinute"],
                                     rollout.get("maximumPerMinute", 1000)))
                elif "maximumPerMinute" in rollout:
                    rate = float(rollout["maximumPerMinute"])
                before = {t: self._snapshot(t) for t in things}
                with self.db.transaction():
                    self.db.insert_job({
                        "job_id": job_id, "document": text, "description": description,
                        "targets": json.dumps(arns), "target_selection": selection,
                        "status": "IN_PROGRESS", "config": json.dumps(config), "created_at": now,
                        "last_updated_at": now, "rollout_rate": rate, "window_start": now,
                        "window_released": 0})
                    job = self._job(job_id)
                    assert job is not None
                    self._target(job, things, now)
                    self._check_complete(job_id, now)
                self._notify_changes(before)
            finally:
                self._flush()
        out = {"jobArn": job_arn(job_id), "jobId": job_id}
        if description:
            out["description"] = description
        return out

    def _new_execution(self, job: dict[str, Any], thing: str, now: float, number: int = 1,
                       retry: int = 0) -> None:
        self.db.insert_execution({
            "job_id": job["job_id"], "thing_name": thing, "execution_number": number,
            "status": "QUEUED", "status_details": "{}", "version": 1, "retry_attempt": retry,
            "queued_at": now, "last_updated_at": now})

    def _target(self, job: dict[str, Any], things: list[str], now: float) -> None:
        """Give things executions now, or queue them behind the rollout rate; either way they
        are the job's targets from now on (what `ListJobTargets` answers)."""
        self.db.add_job_targets(job["job_id"], things)
        if job["rollout_rate"] is None:
            for t in things:
                self._new_execution(job, t, now)
            return
        self.db.enqueue_targets(job["job_id"], things)
        self._release(job["job_id"], now)

    def _release(self, job_id: str, now: float) -> None:
        """Create executions for queued targets as far as the rollout rate allows."""
        job = self._job(job_id)
        if job is None or job["status"] != "IN_PROGRESS" or job["rollout_rate"] is None:
            return
        rate, start, released = job["rollout_rate"], job["window_start"], job["window_released"]
        config = job["config"].get("jobExecutionsRolloutConfig", {})
        expo = config.get("exponentialRate")
        notified, succeeded = job["notified_since_increase"], job["succeeded_since_increase"]

        def grow() -> None:
            # An exponential rate is multiplied by its incrementFactor each time the number of
            # things notified (executions created), or of executions SUCCEEDED, since the last
            # increase reaches rateIncreaseCriteria; maximumPerMinute, given with it, is as
            # far as it grows. The new rate counts from the next minute's window.
            nonlocal rate, notified, succeeded
            crit = expo["rateIncreaseCriteria"]
            if ("numberOfNotifiedThings" in crit and notified >= crit["numberOfNotifiedThings"]) or \
                    ("numberOfSucceededThings" in crit and succeeded >= crit["numberOfSucceededThings"]):
                rate = min(float(config.get("maximumPerMinute", 1000)), rate * expo["incrementFactor"])
                notified = succeeded = 0

        if now - start >= self.minute:
            start, released = now, 0
            if expo:
                grow()  # things that succeeded during the last window
        budget = int(rate) - released
        things = self.db.take_targets(job_id, budget) if budget > 0 else []
        for t in things:
            self._new_execution(job, t, now)
        fields: dict[str, Any] = {"window_start": start, "window_released": released + len(things)}
        if expo:
            notified += len(things)
            grow()
            fields.update(rollout_rate=rate, notified_since_increase=notified,
                          succeeded_since_increase=succeeded)
        self.db.update_job(job_id, **fields)

    def _cancel(self, job: dict[str, Any], now: float, force: bool, reason_code: str | None,
                comment: str | None, before: dict[str, _Snapshot]) -> None:
        job_id = job["job_id"]
        affected = self.db.executions_for_job(job_id)
        for e in affected:
            if e["thing_name"] not in before:
                before[e["thing_name"]] = self._snapshot(e["thing_name"])
        self.db.drop_targets(job_id)
        for e in affected:
            if e["status"] == "QUEUED" or (force and e["status"] == "IN_PROGRESS"):
                self.db.update_execution(e["seq"], status="CANCELED", version=e["version"] + 1,
                                         last_updated_at=now, step_deadline=None, timeout_deadline=None,
                                         force_canceled=1 if e["status"] == "IN_PROGRESS" else 0)
        self.db.update_job(job_id, status="CANCELED", last_updated_at=now, completed_at=now,
                           force_canceled=1 if force else job["force_canceled"],
                           reason_code=reason_code, comment=comment)

    def cancel_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("jobId")
        force = params.get("force", False)
        if not isinstance(force, bool):
            raise _invalid("force must be a boolean")
        reason = params.get("reasonCode")
        if reason is not None and (not isinstance(reason, str) or not REASON_CODE_RE.match(reason)):
            raise _invalid("reasonCode must be 1-128 characters of [A-Z0-9_]")
        comment = _job_text(params, "comment")
        with self.lock:
            try:
                job = self._job(str(job_id))
                if job is None:
                    raise ControlError("ResourceNotFoundException", f"Job {job_id} does not exist")
                if job["status"] == "COMPLETED":
                    raise ControlError("InvalidStateTransitionException",
                                       f"Job {job_id} is COMPLETED and cannot be canceled")
                if job["status"] == "CANCELED" and (not force or job["force_canceled"]):
                    raise ControlError("InvalidStateTransitionException", f"Job {job_id} is already canceled")
                before: dict[str, _Snapshot] = {}
                with self.db.transaction():
                    self._cancel(job, self.clock(), force, reason, comment, before)
                self._notify_changes(before)
            finally:
                self._flush()
        return {"jobArn": job_arn(job["job_id"]), "jobId": job["job_id"]}

    def cancel_job_execution(self, params: dict[str, Any]) -> dict[str, Any]:
        job_id, thing = params.get("jobId"), params.get("thingName")
        force = params.get("force", False)
        expected = params.get("expectedVersion")
        details = params.get("statusDetails")
        if not isinstance(force, bool):
            raise _invalid("force must be a boolean")
        if expected is not None and not _is_int(expected):
            raise _invalid("expectedVersion must be an integer")
        if details is not None:
            try:
                details = check_status_details(details)
            except ValueError as e:
                raise _invalid(str(e)) from None
            if len(details) > 10:
                raise _invalid("statusDetails may hold at most 10 name/value pairs")
        with self.lock:
            try:
                e = self.db.get_execution(str(job_id), str(thing))
                job = self._job(str(job_id))
                if e is None or job is None:
                    raise ControlError("ResourceNotFoundException",
                                       f"Job execution {job_id} for thing {thing} does not exist")
                if expected is not None and expected != e["version"]:
                    raise ControlError("VersionConflictException",
                                       f"expected version {expected}, execution is at {e['version']}")
                if e["status"] in TERMINAL:
                    raise ControlError("InvalidStateTransitionException",
                                       f"Job execution is in terminal state {e['status']}")
                if e["status"] == "IN_PROGRESS" and not force:
                    raise ControlError("InvalidStateTransitionException",
                                       "Job execution is IN_PROGRESS: cancel it with force")
                before = {e["thing_name"]: self._snapshot(e["thing_name"])}
                now = self.clock()
                with self.db.transaction():
                    fields: dict[str, Any] = {"status": "CANCELED", "version": e["version"] + 1,
                                              "last_updated_at": now, "step_deadline": None,
                                              "timeout_deadline": None,
                                              "force_canceled": 1 if e["status"] == "IN_PROGRESS" else 0}
                    if details is not None:
                        fields["status_details"] = json.dumps(details)
                    self.db.update_execution(e["seq"], **fields)
                    self._check_complete(job["job_id"], now)
                self._notify_changes(before)
            finally:
                self._flush()
        return {}

    def delete_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("jobId")
        force = params.get("force", False)
        with self.lock:
            try:
                job = self._job(str(job_id))
                if job is None:
                    raise ControlError("ResourceNotFoundException", f"Job {job_id} does not exist")
                execs = self.db.executions_for_job(job["job_id"], latest_only=False)
                if any(e["status"] == "IN_PROGRESS" for e in execs) and not force:
                    raise ControlError("InvalidStateTransitionException",
                                       f"Job {job_id} has IN_PROGRESS executions: delete it with force")
                before = {t: self._snapshot(t) for t in {e["thing_name"] for e in execs}}
                self.db.delete_job(job["job_id"])
                self._notify_changes(before)
            finally:
                self._flush()
        return {}

    def _job_view(self, job: dict[str, Any]) -> dict[str, Any]:
        counts = self.db.status_counts(job["job_id"])
        details: dict[str, Any] = {"processingTargets": []}
        if job["status"] == "IN_PROGRESS":
            details["processingTargets"] = list(job["targets"])
        for state, field in COUNT_FIELDS.items():
            details[field] = counts.get(state, 0)
        out: dict[str, Any] = {
            "jobArn": job_arn(job["job_id"]), "jobId": job["job_id"],
            "targetSelection": job["target_selection"], "status": job["status"],
            "forceCanceled": bool(job["force_canceled"]), "targets": job["targets"],
            "createdAt": job["created_at"], "lastUpdatedAt": job["last_updated_at"],
            "jobProcessDetails": details,
        }
        for key in ("reason_code", "comment", "description", "completed_at"):
            if job[key] is not None:
                out[{"reason_code": "reasonCode", "completed_at": "completedAt"}.get(key, key)] = job[key]
        out.update(job["config"])
        queued_targets = self.db.count_queued_targets(job["job_id"])
        if queued_targets:
            out["numberOfThingsAwaitingRollout"] = queued_targets  # local extension
        return out

    def describe_job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self._job(job_id)
            if job is None:
                raise ControlError("ResourceNotFoundException", f"Job {job_id} does not exist")
            return {"job": self._job_view(job)}

    def get_job_document(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            job = self.db.get_job(job_id)
            if job is None:
                raise ControlError("ResourceNotFoundException", f"Job {job_id} does not exist")
            return {"document": job["document"]}

    def list_jobs(self, status: str | None = None) -> dict[str, Any]:
        with self.lock:
            return {"jobs": [{"jobArn": job_arn(j["job_id"]), "jobId": j["job_id"], "status": j["status"],
                              "targetSelection": j["target_selection"], "createdAt": j["created_at"],
                              "lastUpdatedAt": j["last_updated_at"], "completedAt": j["completed_at"]}
                             for j in self.db.list_jobs(status)]}

    def _control_execution(self, e: dict[str, Any]) -> dict[str, Any]:
        x: dict[str, Any] = {"jobId": e["job_id"], "status": e["status"],
                             "forceCanceled": bool(e["force_canceled"]),
                             "statusDetails": {"detailsMap": json.loads(e["status_details"])},
                             "thingArn": thing_arn(e["thing_name"]), "queuedAt": e["queued_at"],
                             "lastUpdatedAt": e["last_updated_at"],
                             "executionNumber": e["execution_number"], "versionNumber": e["version"]}
        if e["started_at"] is not None:
            x["startedAt"] = e["started_at"]
        left = self._seconds_left(e)
        if left is not None:
            x["approximateSecondsBeforeTimedOut"] = left
        return x

    def list_job_executions(self, job_id: str, status: str | None = None,
                            include_details: bool = False) -> dict[str, Any]:
        """ListJobExecutionsForJob; with include_details (a local extension) each summary also
        carries statusDetails and versionNumber."""
        if status is not None and status not in ALL_STATES:
            raise _invalid(f"status must be one of {', '.join(ALL_STATES)}")
        with self.lock:
            if self.db.get_job(job_id) is None:
                raise ControlError("ResourceNotFoundException", f"Job {job_id} does not exist")
            out = []
            for e in self.db.executions_for_job(job_id, status):
                s: dict[str, Any] = {"status": e["status"], "queuedAt": e["queued_at"],
                                     "lastUpdatedAt": e["last_updated_at"],
                                     "executionNumber": e["execution_number"],
                                     "retryAttempt": e["retry_attempt"]}
                if e["started_at"] is not None:
                    s["startedAt"] = e["started_at"]
                if include_details:
                    s["statusDetails"] = json.loads(e["status_details"])
                    s["versionNumber"] = e["version"]
                out.append({"thingArn": thing_arn(e["thing_name"]), "jobExecutionSummary": s})
            return {"executionSummaries": out}

    def list_job_targets(self, job_id: str) -> dict[str, Any]:
        """ListJobTargets (a local extension; AWS keeps no such list): every thing the job
        targets, in the order it took them, as it saw them: a group's members when the job was
        created (and, for a continuous job, those that joined it since). A thing the rollout
        has not queued yet, or that a cancel spared, is among them without an execution."""
        with self.lock:
            if self.db.get_job(job_id) is None:
                raise ControlError("ResourceNotFoundException", f"Job {job_id} does not exist")
            things = self.db.job_targets(job_id)
            if not things:  # a job of a stand-in that did not keep its targets yet
                execs = [e["thing_name"] for e in self.db.executions_for_job(job_id)]
                things = list(dict.fromkeys(execs + self.db.queued_targets(job_id)))
            return {"things": things}

    def list_job_executions_for_thing(self, thing: str, include_details: bool = False) -> dict[str, Any]:
        """ListJobExecutionsForThing; with include_details (a local extension) each summary
        also carries statusDetails and versionNumber."""
        with self.lock:
            return {"executionSummaries": [
                {"jobId": e["job_id"], "jobExecutionSummary": {
                    "status": e["status"], "queuedAt": e["queued_at"], "lastUpdatedAt": e["last_updated_at"],
                    "executionNumber": e["execution_number"], "retryAttempt": e["retry_attempt"],
                    **({"startedAt": e["started_at"]} if e["started_at"] is not None else {}),
                    **({"statusDetails": json.loads(e["status_details"]), "versionNumber": e["version"]}
                       if include_details else {})}}
                for e in self.db.executions_for_thing(thing)]}

    def describe_job_execution(self, job_id: str, thing: str, number: int | None = None) -> dict[str, Any]:
        with self.lock:
            e = self.db.get_execution(job_id, thing, number)
            if e is None:
                raise ControlError("ResourceNotFoundException",
                                   f"Job execution {job_id} for thing {thing} does not exist")
            return {"execution": self._control_execution(e)}

    # ======================================================================================
    # the clock: timeouts and rollouts
    # ======================================================================================
    def tick(self) -> None:
        """End overdue executions (TIMED_OUT) and release rollouts; call it often."""
        with self.lock:
            try:
                now = self.clock()
                for e in self.db.due_timeouts(now):
                    job = self._job(e["job_id"])
                    if job is None:
                        continue
                    before = {e["thing_name"]: self._snapshot(e["thing_name"])}
                    with self.db.transaction():
                        self.db.update_execution(e["seq"], status="TIMED_OUT", version=e["version"] + 1,
                                                 last_updated_at=now, step_deadline=None,
                                                 timeout_deadline=None)
                        e2 = self.db.get_execution_by_seq(e["seq"]) or e
                        self._after_terminal(job, e2, now, before)
                    self._notify_changes(before)
                for row in self.db.active_jobs():
                    if row["rollout_rate"] is None or not self.db.count_queued_targets(row["job_id"]):
                        continue
                    if now - row["window_start"] < self.minute:
                        continue
                    pending = self.db.queued_targets(row["job_id"])[: int(row["rollout_rate"]) + 1]
                    before = {t: self._snapshot(t) for t in pending}
                    with self.db.transaction():
                        self._release(row["job_id"], now)
                        self._check_complete(row["job_id"], now)
                    self._notify_changes(before)
            finally:
                self._flush()


def _nodelay(client: Any) -> None:
    """Send small MQTT packets at once (paho leaves Nagle on: +40 ms per round trip)."""
    import socket as _socket
    sock = client.socket()
    if sock is not None:
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        except OSError:
            pass


JOBS_FILTER = "$aws/things/+/jobs/#"
STREAMS_FILTER = "$aws/things/+/streams/#"
SHADOW_FILTER = "$aws/things/+/shadow/#"


class JobsService:
    """The engine on the broker: an MQTT client (TLS, its own certificate) and a timer. With
    `streams` (a `streams.StreamsEngine`) it answers stream requests too, on a worker of their
    own so that a long GetStream answer does not hold up the jobs API. With `shadows` (a
    `shadow.ShadowEngine`) it answers shadow requests, on the jobs worker."""

    def __init__(self, engine: JobsEngine, host: str, port: int, ca_pem: Path, cert_pem: Path,
                 key_pem: Path, client_id: str = SERVICE_CN, streams: Any = None,
                 shadows: Any = None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.subscribeoptions import SubscribeOptions

        self._mqtt = mqtt
        self._options = SubscribeOptions(qos=1, noLocal=True)
        self.engine = engine
        self.host, self.port = host, port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_pem))
        ctx.load_cert_chain(str(cert_pem), str(key_pem))
        self.client.tls_set_context(ctx)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()
        self._work: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._stream_work: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        engine.publish = self._publish
        self.streams = streams
        if streams is not None:
            streams.publish = self._publish
        self.shadows = shadows
        if shadows is not None:
            shadows.publish = self._publish

    def _publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("jobs service could not connect: %s", reason)
            return
        _nodelay(client)
        filters = [JOBS_FILTER] + ([STREAMS_FILTER] if self.streams is not None else []) \
            + ([SHADOW_FILTER] if self.shadows is not None else [])
        client.subscribe([(f, self._options) for f in filters])

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if all(not r.is_failure for r in reasons):
            self.subscribed.set()
        else:
            log.error("jobs service subscription refused: %s", reasons)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/", 4)
        if len(parts) > 3 and parts[3] == "streams":
            self._stream_work.put((msg.topic, bytes(msg.payload)))
        else:
            self._work.put((msg.topic, bytes(msg.payload)))

    def _handle(self, topic: str, payload: bytes) -> None:
        """A request for the jobs worker: a shadow's or the Jobs API's."""
        parts = topic.split("/", 4)
        if len(parts) > 3 and parts[3] == "shadow":
            if self.shadows is not None:
                self.shadows.handle(topic, payload)
        else:
            self.engine.handle(topic, payload)

    def _worker(self, work: "queue.Queue[tuple[str, bytes] | None]",
                handle: Callable[[str, bytes], None]) -> None:
        while True:
            item = work.get()
            if item is None:
                return
            try:
                handle(*item)
            except Exception:
                log.exception("request on %s failed", item[0])

    def _timer(self) -> None:
        period = max(0.02, min(1.0, self.engine.minute / 30))
        while not self._stop.wait(period):
            try:
                self.engine.tick()
            except Exception:
                log.exception("timer tick failed")

    def start(self, timeout: float = 10.0) -> "JobsService":
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.client.loop_stop()
            raise RuntimeError(f"jobs service could not subscribe on {self.host}:{self.port}")
        workers: list[tuple[Callable[..., None], str, tuple[Any, ...]]] = [
            (self._worker, "jobs-worker", (self._work, self._handle)), (self._timer, "jobs-timer", ())]
        if self.streams is not None:
            workers.append((self._worker, "streams-worker", (self._stream_work, self.streams.handle)))
        for target, name, args in workers:
            t = threading.Thread(target=target, name=name, args=args, daemon=True)
            t.start()
            self._threads.append(t)
        self.engine.tick()  # catch up on whatever fell due while the service was down
        return self

    def stop(self) -> None:
        self._stop.set()
        self._work.put(None)
        self._stream_work.put(None)
        for t in self._threads:
            t.join(timeout=5)
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
