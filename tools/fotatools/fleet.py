"""Which board runs what: the fleet as the device shadows and the Jobs API tell it.

Every board reports to its classic device shadow (`lib/fota/shadow.py`), at boot and after every
job it ends, under `state.reported`:

    {"firmware": "1.0.1", "app": "1.2.0", "files": {"file_1": "2.0.0"},
     "job": {"id": "fota-1_0_1-...", "status": "SUCCEEDED", "reason": null, "step": "confirm"}}

(`files`: the versions of the files a job put on other targets, as those targets reported them;
`job`: the last job the board ended, its outcome and the step it ended in.) The shadow's
metadata says when each field was reported.

Three reads, the same on the local stand-in and on AWS (`Backend.thing_shadow`,
`things_in_group`, `thing_executions`, `list_jobs`): `things` (one `ThingState` per thing, from
its shadow), `history` (a thing's job executions, newest first) and `jobs` (every job with its
counts by execution state). Each result has `to_json()` for `--json` and the dashboard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .backend import Backend, Execution, JobInfo

FIRMWARE, APP, FILES, JOB = "firmware", "app", "files", "job"  # the shadow's reported fields


@dataclass
class ThingState:
    """One thing as its shadow reports it; every field None when it never reported."""

    thing: str
    firmware: str | None = None  # the running firmware's version
    application: str | None = None  # the running application's version ("none": no app slot)
    files: dict[str, str] = field(default_factory=dict)  # "file_<id>" -> version on that target
    job_id: str | None = None  # the last job the board ended
    job_status: str | None = None  # SUCCEEDED, FAILED, REJECTED
    reason: str | None = None  # why it failed or was rejected
    step: str | None = None  # the step the job ended in
    reported_at: float | None = None  # epoch seconds of the latest reported field
    shadow_version: int | None = None  # None: the thing has no shadow

    @property
    def reported(self) -> bool:
        return self.shadow_version is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HistoryEntry:
    """One job execution of a thing."""

    job_id: str
    status: str
    reason: str | None
    step: str | None
    execution_number: int
    queued_at: float | None
    started_at: float | None
    last_updated_at: float | None
    details: dict[str, str] = field(default_factory=dict)  # its whole statusDetails

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobSummary:
    """A job and its things by execution state."""

    job_id: str
    status: str  # IN_PROGRESS, CANCELED, COMPLETED, DELETION_IN_PROGRESS
    counts: dict[str, int]  # execution state -> things, states with none left out
    created_at: float | None
    reason_code: str | None
    targets: list[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _latest(meta: Any) -> float | None:
    """The newest timestamp in a shadow's metadata (any depth)."""
    if isinstance(meta, dict):
        if isinstance(meta.get("timestamp"), (int, float)) and len(meta) == 1:
            return float(meta["timestamp"])
        times = [t for t in (_latest(v) for v in meta.values()) if t is not None]
        return max(times) if times else None
    if isinstance(meta, list):
        times = [t for t in (_latest(v) for v in meta) if t is not None]
        return max(times) if times else None
    return None


def from_shadow(thing: str, doc: dict[str, Any] | None) -> ThingState:
    """A thing's state from its shadow document (GetThingShadow's answer), or None."""
    if not doc:
        return ThingState(thing)
    rep = (doc.get("state") or {}).get("reported") or {}
    job = rep.get(JOB) if isinstance(rep.get(JOB), dict) else {}
    files = rep.get(FILES) if isinstance(rep.get(FILES), dict) else {}
    version = doc.get("version")
    return ThingState(
        thing=thing, firmware=_text(rep.get(FIRMWARE)), application=_text(rep.get(APP)),
        files={str(k): str(v) for k, v in sorted(files.items()) if v is not None},
        job_id=_text(job.get("id")), job_status=_text(job.get("status")),
        reason=_text(job.get("reason")), step=_text(job.get("step")),
        reported_at=_latest((doc.get("metadata") or {}).get("reported")),
        shadow_version=int(version) if isinstance(version, int) else 0)


def things(backend: Backend, group: str | None = None, version: str | None = None) -> list[ThingState]:
    """Every thing (or a group's: NotFound if there is no such group), by name, as its shadow
    reports it; with `version`, only those whose firmware or application is that version."""
    names = backend.things_in_group(group) if group else backend.names("thing")
    out = [from_shadow(t, backend.thing_shadow(t)) for t in sorted(set(names))]
    if version is not None:
        out = [t for t in out if version in (t.firmware, t.application)]
    return out


def history(backend: Backend, thing: str) -> list[HistoryEntry]:
    """The thing's job executions, newest first (NotFound if there is no such thing)."""
    def when(e: Execution) -> tuple[float, float, int]:
        return (e.last_updated_at or 0.0, e.queued_at or 0.0, e.execution_number)

    out = []
    for e in sorted(backend.thing_executions(thing), key=when, reverse=True):
        d = dict(e.status_details)
        out.append(HistoryEntry(job_id=e.job_id, status=e.status, reason=d.get("reason"),
                                step=d.get("step"), execution_number=e.execution_number,
                                queued_at=e.queued_at, started_at=e.started_at,
                                last_updated_at=e.last_updated_at, details=d))
    return out


def summary(job: JobInfo) -> JobSummary:
    return JobSummary(job_id=job.job_id, status=job.status,
                      counts={s: n for s, n in job.counts.items() if n},
                      created_at=job.created_at, reason_code=job.reason_code, targets=list(job.targets))


def jobs(backend: Backend, limit: int | None = None) -> list[JobSummary]:
    """Every job (the newest `limit` when given, the others not described), newest first, with
    its things by execution state."""
    out = [summary(j) for j in backend.list_jobs(limit)]
    return sorted(out, key=lambda j: (j.created_at or 0.0, j.job_id), reverse=True)
