"""The control plane the CLI talks to: one interface, two backends.

`LocalBackend` (fotatools.cloud.client) drives the local AWS IoT stand-in; `AwsBackend`
(fotatools.aws) drives AWS IoT and S3 through boto3. Both speak in the dataclasses below,
whose fields are named as in the AWS IoT API so that a reader of one knows the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED")
EXECUTION_STATES = ("QUEUED", "IN_PROGRESS") + TERMINAL_STATES
ENDED_JOB_STATES = ("COMPLETED", "CANCELED", "DELETION_IN_PROGRESS")

Kind = Literal["job", "thing", "group"]  # what a user names on the command line


class BackendError(Exception):
    """A control-plane call failed; the message is fit for a user (one line). `code` is the
    service's error name when it gave one (e.g. ResourceNotFoundException)."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class NotFound(BackendError):
    """The job, thing or thing group a user named does not exist."""

    def __init__(self, kind: Kind, name: str, where: str = ""):
        super().__init__(f"no {kind} {name!r}" + (f" {where}" if where else ""),
                         "ResourceNotFoundException")
        self.kind: Kind = kind
        self.name = name


# What devices on AWS set their clock from by default: three independent public NTP services
# (Amazon's, Cloudflare's, the NTP pool), so that one that lies is outvoted (lib/fota/clock.py
# believes a time only when two servers agree, or when TLS lets it through).
DEFAULT_NTP = ("time.aws.com", "time.cloudflare.com", "pool.ntp.org")


@dataclass
class Endpoint:
    """Where a device connects: MQTT over TLS with a client certificate."""

    host: str
    port: int
    ca_pem: bytes  # the CA that signs the broker's (and the object store's) certificate
    # the SNTP servers devices set their clock from ("host[:port]", or a list of them)
    ntp: str | list[str] = field(default_factory=lambda: list(DEFAULT_NTP))


@dataclass
class ThingCredentials:
    thing_name: str
    certificate_pem: bytes
    private_key_pem: bytes
    certificate_id: str
    endpoint: Endpoint


@dataclass
class Rollout:
    """Rollout and abort settings, as AWS IoT's create_job takes them."""

    # jobExecutionsRolloutConfig.maximumPerMinute: a constant rate, or with an exponential
    # rate the most it grows to
    maximum_per_minute: int | None = None
    # jobExecutionsRolloutConfig.exponentialRate: baseRatePerMinute (1..1000), incrementFactor
    # (1.1..5, one decimal), and rateIncreaseCriteria: numberOfNotifiedThings or
    # numberOfSucceededThings (>= 1) since the last increase
    base_per_minute: int | None = None
    increment_factor: float | None = None
    increase_after: int | None = None
    increase_on: str = "succeeded"  # or "notified"
    abort_failure_percent: float | None = None  # abortConfig: failureType ALL, action CANCEL
    abort_min_executed: int = 1  # abortConfig: minNumberOfExecutedThings
    step_timeout_minutes: int | None = None  # timeoutConfig.inProgressTimeoutInMinutes
    presigned_expires_sec: int = 3600  # presignedUrlConfig.expiresInSec (60..3600)

    def rollout_config(self) -> dict[str, Any] | None:
        """jobExecutionsRolloutConfig, or None for no rate at all."""
        out: dict[str, Any] = {}
        if self.base_per_minute is not None:
            key = ("numberOfNotifiedThings" if self.increase_on == "notified"
                   else "numberOfSucceededThings")
            out["exponentialRate"] = {
                "baseRatePerMinute": self.base_per_minute,
                "incrementFactor": float(self.increment_factor or 2.0),
                "rateIncreaseCriteria": {key: int(self.increase_after or 1)}}
        if self.maximum_per_minute is not None:
            out["maximumPerMinute"] = self.maximum_per_minute
        return out or None

    def job_config(self) -> dict[str, Any]:
        """The create_job parameters these settings make (presignedUrlConfig aside, whose
        role only AWS needs): jobExecutionsRolloutConfig, abortConfig, timeoutConfig."""
        out: dict[str, Any] = {}
        rate = self.rollout_config()
        if rate:
            out["jobExecutionsRolloutConfig"] = rate
        if self.abort_failure_percent is not None:
            out["abortConfig"] = {"criteriaList": [{
                "failureType": "ALL", "action": "CANCEL",
                "thresholdPercentage": float(self.abort_failure_percent),
                "minNumberOfExecutedThings": self.abort_min_executed}]}
        if self.step_timeout_minutes is not None:
            out["timeoutConfig"] = {"inProgressTimeoutInMinutes": self.step_timeout_minutes}
        return out


@dataclass
class Execution:
    job_id: str
    thing_name: str
    status: str  # one of EXECUTION_STATES
    status_details: dict[str, str] = field(default_factory=dict)
    version_number: int = 0
    execution_number: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    last_updated_at: float | None = None


@dataclass
class JobInfo:
    job_id: str
    status: str  # IN_PROGRESS, CANCELED, DELETION_IN_PROGRESS, COMPLETED
    document: dict[str, Any]
    targets: list[str]  # thing or thing-group ARNs
    counts: dict[str, int] = field(default_factory=dict)  # execution state -> number of things
    created_at: float | None = None
    reason_code: str | None = None  # why it was cancelled (e.g. abort criteria met)
    target_selection: str = "SNAPSHOT"  # or CONTINUOUS
    # jobProcessDetails.processingTargets: the targets AWS is still rolling the job out to
    # (creating executions for); empty once every target thing has its execution
    processing_targets: list[str] = field(default_factory=list)
    rollout: dict[str, Any] = field(default_factory=dict)  # jobExecutionsRolloutConfig
    description: str | None = None


@dataclass
class ListedJob:
    """A job as ListJobs lists it (a JobSummary in the AWS IoT API): no document, targets or
    counts, which only DescribeJob gives, one call a job."""

    job_id: str
    status: str  # IN_PROGRESS, CANCELED, DELETION_IN_PROGRESS, COMPLETED (SCHEDULED on AWS)
    created_at: float | None = None
    last_updated_at: float | None = None
    completed_at: float | None = None


def newest_first(jobs: list[ListedJob]) -> list[ListedJob]:
    """By creation time, the newest first (a job without one last; equal times by id)."""
    return sorted(jobs, key=lambda j: (j.created_at is not None, j.created_at or 0.0, j.job_id),
                  reverse=True)


class Backend(Protocol):
    name: str  # "local" or "aws"

    def endpoint(self) -> Endpoint: ...

    def provision(self, thing_name: str) -> ThingCredentials:
        """Create the thing (if new), a certificate and key for it, and a policy that lets it
        use only its own topics; attach them."""

    def retire_certificates(self, thing_name: str, keep: str) -> list[str]:
        """Certificate rotation: every certificate of the thing other than `keep` stops working.
        Each is detached from the thing and, unless another thing still uses it, made INACTIVE
        (the broker refuses it) and detached from the device policy. Returns the ids made
        INACTIVE."""

    def create_thing_group(self, group: str, things: list[str]) -> str:
        """Create the group if needed, add the things; return the group ARN."""

    def thing_arn(self, thing_name: str) -> str:
        """The ARN of an existing thing (NotFound if there is none of that name)."""

    def group_arn(self, group: str) -> str:
        """The ARN of an existing thing group (NotFound if there is none of that name)."""

    def upload(self, path: Path, key: str) -> str:
        """Store a file in the firmware bucket; return its S3-style https URL (the URL that goes
        inside the `${aws:iot:s3-presigned-url:...}` placeholder)."""

    def create_stream(self, stream_id: str, files: list[tuple[int, str]], description: str = "") -> int:
        """An MQTT file-delivery stream over uploaded objects (file id, key); its version."""

    def create_job(self, job_id: str, targets: list[str], document: dict[str, Any],
                   rollout: Rollout, description: str | None = None) -> JobInfo: ...

    def describe_job(self, job_id: str) -> JobInfo:
        """NotFound if there is no such job."""

    def list_executions(self, job_id: str) -> list[Execution]: ...

    def group_members(self, group: str) -> list[str]:
        """The things in a thing group now, its child groups' included (NotFound if there is
        no such group)."""

    def target_things(self, job: JobInfo) -> list[str]:
        """The things the job targets as it saw them, group members included, in order: those
        the rollout has not queued yet (or a cancel spared) are among them without an
        execution. The stand-in keeps the members a group had when the job was created; AWS
        keeps no such list, so there the members of a group the job is still rolling out to
        (processingTargets; every target group of a cancelled job) are read now, with their
        child groups' things."""

    def names(self, kind: Kind) -> list[str]:
        """The existing jobs, things or thing groups (for "did you mean" on a mistyped name);
        at most a few thousand."""

    def cancel_job(self, job_id: str, force: bool = False, reason: str | None = None) -> JobInfo: ...

    # -- the fleet (fotatools.fleet) ------------------------------------------------------------
    def thing_shadow(self, thing_name: str) -> dict[str, Any] | None:
        """The thing's classic shadow document as GetThingShadow returns it (state, metadata,
        version, timestamp), or None when it has none."""

    def things_in_group(self, group: str) -> list[str]:
        """The things of a thing group (NotFound if there is no such group)."""

    def thing_executions(self, thing_name: str) -> list[Execution]:
        """Every job execution of the thing, with its statusDetails (NotFound if there is no
        such thing)."""

    def listed_jobs(self) -> list[ListedJob]:
        """Every job, newest first (`newest_first`), as ListJobs lists it: a call a page of
        jobs, none a job."""

    def list_jobs(self, limit: int | None = None) -> list[JobInfo]:
        """The newest `limit` jobs (every job when None), newest first, each with its counts by
        execution state (its document left empty): a DescribeJob for each of them only."""
