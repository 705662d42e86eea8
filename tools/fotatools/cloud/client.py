"""`LocalBackend`: the control-plane `Backend` for the local AWS IoT stand-in.

It talks to the running stand-in's control API (see `control.py`) with the token from the state
folder; start the stand-in first (`fotatools.cloud.daemon.start(home)`, or `fota cloud start`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..backend import (DEFAULT_NTP, BackendError, Endpoint, Execution, JobInfo, Kind, ListedJob,
                       NotFound, Rollout, ThingCredentials, newest_first)
from .daemon import CloudInfo, Paths
from .jobs import COUNT_FIELDS, REASON_CODE_RE

DEFAULT_BUCKET = "fota-firmware"


class LocalBackend:
    """Backend for the stand-in whose state lives in `home` (FOTA_HOME, default ./.fota)."""

    name = "local"

    def __init__(self, home: Path | str = ".fota", bucket: str = DEFAULT_BUCKET, timeout: float = 60.0):
        self.home = Path(home)
        self.bucket = bucket
        self.timeout = timeout
        self._info: CloudInfo | None = None

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def info(self) -> CloudInfo:
        if self._info is None:
            try:
                self._info = CloudInfo.load(Paths(self.home).state)
            except (OSError, ValueError, KeyError, TypeError):
                raise BackendError(f"the local cloud is not running on {self.home} "
                                   "(start it with `fota cloud start`)") from None
        return self._info

    def call(self, op: str, params: dict[str, Any] | None = None, body: bytes | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
        """One control-API operation; raise BackendError with the service's message."""
        info = self.info
        url = f"{info.control_url}/{op}"
        if query:
            url += "?" + urlencode(query)
        data = body if body is not None else json.dumps(params or {}).encode()
        try:
            token = info.token
        except OSError:
            raise BackendError(f"no control token in {self.home}: is the local cloud set up?") from None
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/octet-stream" if body is not None else "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            code = None
            try:
                err = json.loads(e.read())
                code = str(err.get("__type", "Error"))
                msg = f"{code}: {err.get('message', '')}"
            except ValueError:
                msg = f"HTTP {e.code}"
            if code == "UnknownOperationException":
                raise BackendError(f"the local cloud running on {self.home} is older than this "
                                   f"fota (it has no {op}): restart it with `fota cloud stop` "
                                   "and `fota cloud start`", code) from None
            raise BackendError(f"{op} failed: {msg}", code) from None
        except (urllib.error.URLError, OSError) as e:
            self._info = None
            raise BackendError(f"the local cloud does not answer at {info.control_url} ({e}); "
                               "is it running? (`fota cloud status`)") from None

    # -- the Backend protocol ---------------------------------------------------------------
    def endpoint(self) -> Endpoint:
        r = self.call("DescribeEndpoint")
        return Endpoint(host=r["endpointAddress"], port=int(r["port"]),
                        ca_pem=r["caCertificatePem"].encode(), ntp=self.info.ntp or list(DEFAULT_NTP))

    def provision(self, thing_name: str) -> ThingCredentials:
        r = self.call("Provision", {"thingName": thing_name})
        return ThingCredentials(thing_name=thing_name, certificate_pem=r["certificatePem"].encode(),
                                private_key_pem=r["keyPair"]["PrivateKey"].encode(),
                                certificate_id=r["certificateId"], endpoint=self.endpoint())

    def retire_certificates(self, thing_name: str, keep: str) -> list[str]:
        # a certificate here belongs to one thing, and the "policy" is the broker's access list
        retired = []
        for arn in self.call("ListThingPrincipals", {"thingName": thing_name})["principals"]:
            cert_id = arn.rsplit("/", 1)[-1]
            if cert_id == keep:
                continue
            self.call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "INACTIVE"})
            self.call("DetachThingPrincipal", {"thingName": thing_name, "principal": arn})
            retired.append(cert_id)
        return retired

    def create_thing_group(self, group: str, things: list[str]) -> str:
        r = self.call("CreateThingGroup", {"thingGroupName": group, "things": list(things)})
        return r["thingGroupArn"]

    def _named(self, kind: Kind, name: str, op: str, params: dict[str, Any]) -> dict[str, Any]:
        """`op` on a job, thing or group the user named: NotFound if it does not exist."""
        try:
            return self.call(op, params)
        except BackendError as e:
            if e.code == "ResourceNotFoundException":
                raise NotFound(kind, name, "on the local cloud") from None
            raise

    def thing_arn(self, thing_name: str) -> str:
        return self._named("thing", thing_name, "DescribeThing", {"thingName": thing_name})["thingArn"]

    def group_arn(self, group: str) -> str:
        return self._named("group", group, "DescribeThingGroup",
                           {"thingGroupName": group})["thingGroupArn"]

    def names(self, kind: Kind) -> list[str]:
        if kind == "job":
            return [j["jobId"] for j in self.call("ListJobs")["jobs"]]
        if kind == "thing":
            return [t["thingName"] for t in self.call("ListThings")["things"]]
        return [g["groupName"] for g in self.call("ListThingGroups")["thingGroups"]]

    def upload(self, path: Path, key: str) -> str:
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"no such file: {path}")
        r = self.call("PutObject", body=path.read_bytes(), query={"bucket": self.bucket, "key": key})
        return r["url"]

    def create_job(self, job_id: str, targets: list[str], document: dict[str, Any],
                   rollout: Rollout, description: str | None = None) -> JobInfo:
        params: dict[str, Any] = {"jobId": job_id, "targets": list(targets),
                                  "document": json.dumps(document), "targetSelection": "SNAPSHOT",
                                  "presignedUrlConfig": {"expiresInSec": rollout.presigned_expires_sec}}
        params.update(rollout.job_config())
        if description:
            params["description"] = description
        self.call("CreateJob", params)
        return self.describe_job(job_id)

    def describe_job(self, job_id: str) -> JobInfo:
        job = self._named("job", job_id, "DescribeJob", {"jobId": job_id})["job"]
        doc = json.loads(self.call("GetJobDocument", {"jobId": job_id})["document"])
        details = job.get("jobProcessDetails", {})
        counts = {state: int(details.get(field, 0)) for state, field in COUNT_FIELDS.items()}
        return JobInfo(job_id=job["jobId"], status=job["status"], document=doc, targets=list(job["targets"]),
                       counts=counts, created_at=job.get("createdAt"),
                       reason_code=job.get("reasonCode") or job.get("comment"),
                       target_selection=job.get("targetSelection", "SNAPSHOT"),
                       processing_targets=list(details.get("processingTargets") or []),
                       rollout=dict(job.get("jobExecutionsRolloutConfig") or {}),
                       description=job.get("description"))

    def group_members(self, group: str) -> list[str]:
        return list(self._named("group", group, "ListThingsInThingGroup",
                                {"thingGroupName": group})["things"])

    def target_things(self, job: JobInfo) -> list[str]:
        return list(self.call("ListJobTargets", {"jobId": job.job_id})["things"])

    def list_executions(self, job_id: str) -> list[Execution]:
        r = self.call("ListJobExecutionsForJob", {"jobId": job_id, "includeDetails": True})
        out = []
        for s in r["executionSummaries"]:
            e = s["jobExecutionSummary"]
            out.append(Execution(job_id=job_id, thing_name=s["thingArn"].rpartition("/")[2],
                                 status=e["status"], status_details=dict(e.get("statusDetails", {})),
                                 version_number=int(e.get("versionNumber", 0)),
                                 execution_number=int(e["executionNumber"]), queued_at=e.get("queuedAt"),
                                 started_at=e.get("startedAt"), last_updated_at=e.get("lastUpdatedAt")))
        return out

    def cancel_job(self, job_id: str, force: bool = False, reason: str | None = None) -> JobInfo:
        params: dict[str, Any] = {"jobId": job_id, "force": force}
        if reason:
            if REASON_CODE_RE.match(reason):
                params["reasonCode"] = reason
            else:
                params["comment"] = reason
        self._named("job", job_id, "CancelJob", params)
        return self.describe_job(job_id)

    # -- the fleet: shadows, a thing's executions, the jobs ----------------------------------
    def thing_shadow(self, thing_name: str) -> dict[str, Any] | None:
        try:
            return self.call("GetThingShadow", {"thingName": thing_name})
        except BackendError as e:
            if e.code == "ResourceNotFoundException":
                return None  # no shadow (or no such thing)
            raise

    def things_in_group(self, group: str) -> list[str]:
        return list(self._named("group", group, "ListThingsInThingGroup",
                                {"thingGroupName": group})["things"])

    def thing_executions(self, thing_name: str) -> list[Execution]:
        self.thing_arn(thing_name)  # NotFound for a thing that does not exist
        r = self.call("ListJobExecutionsForThing", {"thingName": thing_name, "includeDetails": True})
        out = []
        for s in r["executionSummaries"]:
            e = s["jobExecutionSummary"]
            out.append(Execution(job_id=s["jobId"], thing_name=thing_name, status=e["status"],
                                 status_details=dict(e.get("statusDetails", {})),
                                 version_number=int(e.get("versionNumber", 0)),
                                 execution_number=int(e["executionNumber"]), queued_at=e.get("queuedAt"),
                                 started_at=e.get("startedAt"), last_updated_at=e.get("lastUpdatedAt")))
        return out

    def listed_jobs(self) -> list[ListedJob]:
        return newest_first([
            ListedJob(job_id=j["jobId"], status=j["status"], created_at=j.get("createdAt"),
                      last_updated_at=j.get("lastUpdatedAt"), completed_at=j.get("completedAt"))
            for j in self.call("ListJobs")["jobs"]])

    def list_jobs(self, limit: int | None = None) -> list[JobInfo]:
        out = []
        for listed in self.listed_jobs()[:limit]:
            try:
                job = self.call("DescribeJob", {"jobId": listed.job_id})["job"]
            except BackendError as e:
                if e.code == "ResourceNotFoundException":
                    continue  # deleted meanwhile
                raise
            details = job.get("jobProcessDetails", {})
            out.append(JobInfo(
                job_id=job["jobId"], status=job["status"], document={}, targets=list(job["targets"]),
                counts={state: int(details.get(field, 0)) for state, field in COUNT_FIELDS.items()},
                created_at=job.get("createdAt"), reason_code=job.get("reasonCode") or job.get("comment"),
                target_selection=job.get("targetSelection", "SNAPSHOT"),
                processing_targets=list(details.get("processingTargets") or []),
                rollout=dict(job.get("jobExecutionsRolloutConfig") or {})))
        return out

    # -- beyond the protocol ----------------------------------------------------------------
    def presign(self, key: str, expires_sec: int = 3600) -> str:
        """A presigned https URL of an uploaded object (what a device would get)."""
        return self.call("Presign", {"bucket": self.bucket, "key": key, "expiresInSec": expires_sec})["url"]

    def cancel_execution(self, job_id: str, thing_name: str, force: bool = False) -> None:
        self.call("CancelJobExecution", {"jobId": job_id, "thingName": thing_name, "force": force})

    def delete_job(self, job_id: str, force: bool = False) -> None:
        self.call("DeleteJob", {"jobId": job_id, "force": force})

    # -- streams (MQTT-based file delivery) -------------------------------------------------
    def _stream_files(self, files: list[tuple[int, str]]) -> list[dict[str, Any]]:
        return [{"fileId": int(file_id), "s3Location": {"bucket": self.bucket, "key": key}}
                for file_id, key in files]

    def create_stream(self, stream_id: str, files: list[tuple[int, str]], description: str = "") -> int:
        """CreateStream over uploaded objects: `files` are (file id 0..255, key in this
        backend's bucket); return the stream version (1, or one more than a deleted stream of
        the same id had)."""
        params: dict[str, Any] = {"streamId": stream_id, "files": self._stream_files(files)}
        if description:
            params["description"] = description
        return int(self.call("CreateStream", params)["streamVersion"])

    def update_stream(self, stream_id: str, files: list[tuple[int, str]] | None = None,
                      description: str | None = None) -> int:
        """UpdateStream: replace the files and/or the description; return the new version."""
        params: dict[str, Any] = {"streamId": stream_id}
        if files is not None:
            params["files"] = self._stream_files(files)
        if description is not None:
            params["description"] = description
        return int(self.call("UpdateStream", params)["streamVersion"])

    def describe_stream(self, stream_id: str) -> dict[str, Any]:
        """DescribeStream's `streamInfo`: streamId, streamArn, streamVersion, description,
        files [{fileId, s3Location: {bucket, key}}], createdAt, lastUpdatedAt."""
        return self.call("DescribeStream", {"streamId": stream_id})["streamInfo"]

    def delete_stream(self, stream_id: str) -> None:
        self.call("DeleteStream", {"streamId": stream_id})
