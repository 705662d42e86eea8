"""`AwsBackend`: the control plane on AWS IoT Core and S3, through boto3.

Region and credentials come from the environment as every AWS tool reads them (AWS_PROFILE,
AWS_ACCESS_KEY_ID..., AWS_REGION / AWS_DEFAULT_REGION, ~/.aws/config); `endpoint_url` points
both clients elsewhere (moto in the tests).

What the account needs besides what this module creates:
- an S3 bucket name (`bucket`; created if missing), and
- an IAM role that AWS IoT can assume (trust `iot.amazonaws.com`) with `s3:GetObject` on that
  bucket: its ARN goes into each job's presignedUrlConfig so that AWS IoT can replace the
  `${aws:iot:s3-presigned-url:...}` placeholder with a time-limited URL for each device.

Devices share one IoT policy (`DEVICE_POLICY`), written with the thing-name policy variable, so a
device may connect only with its own thing name as client id and use only its own Jobs, streams
and device shadow topics and its telemetry topic.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .backend import (BackendError, Endpoint, Execution, JobInfo, Kind, ListedJob, NotFound,
                      Rollout, ThingCredentials, newest_first)
from .ota import OtaFile, signature_bytes

DEVICE_POLICY = "fota-device"
MQTT_PORT = 8883
AMAZON_ROOT_CA_1 = "CN=Amazon Root CA 1,O=Amazon,C=US"
AMAZON_ROOT_CA_1_SHA256 = "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"
LARGE_UPLOAD = 1 << 20  # show a progress bar from this size on
MAX_NAMES = 2000  # names read for "did you mean" (8 pages of ListThings)
LIST_PAGE = 250  # ListJobs' largest maxResults (the API's range is 1..250)

_COUNT_KEYS = {
    "numberOfQueuedThings": "QUEUED", "numberOfInProgressThings": "IN_PROGRESS",
    "numberOfSucceededThings": "SUCCEEDED", "numberOfFailedThings": "FAILED",
    "numberOfRejectedThings": "REJECTED", "numberOfCanceledThings": "CANCELED",
    "numberOfRemovedThings": "REMOVED", "numberOfTimedOutThings": "TIMED_OUT",
}


def device_policy(partition: str, region: str, account: str) -> dict[str, Any]:
    """The IoT policy every FOTA device gets: its own client id, its Jobs, MQTT file-delivery
    (streams) and device shadow topics, and its telemetry."""
    base = f"arn:{partition}:iot:{region}:{account}"
    thing = "${iot:Connection.Thing.ThingName}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect",
             "Resource": f"{base}:client/{thing}",
             "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": [f"{base}:topic/$aws/things/{thing}/jobs/*",
                          f"{base}:topic/$aws/things/{thing}/streams/*",
                          f"{base}:topic/$aws/things/{thing}/shadow/*",
                          f"{base}:topic/things/{thing}/telemetry"]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [f"{base}:topicfilter/$aws/things/{thing}/jobs/*",
                          f"{base}:topicfilter/$aws/things/{thing}/streams/*",
                          f"{base}:topicfilter/$aws/things/{thing}/shadow/*"]},
        ],
    }


def amazon_root_ca() -> bytes:
    """Amazon Root CA 1 (PEM), from certifi's bundle or the system store; never downloaded."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    candidates: list[str] = []
    try:
        import certifi
        candidates.append(certifi.where())
    except ImportError:
        pass
    import ssl
    paths = ssl.get_default_verify_paths()
    candidates += [p for p in (paths.cafile, paths.openssl_cafile) if p]
    begin = b"-----BEGIN CERTIFICATE-----"
    for bundle in candidates:
        try:
            blob = Path(bundle).read_bytes()
        except OSError:
            continue
        for chunk in blob.split(begin)[1:]:
            pem = begin + chunk.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cert = x509.load_pem_x509_certificate(pem)
            except ValueError:
                continue
            if (cert.subject.rfc4514_string() == AMAZON_ROOT_CA_1
                    and cert.fingerprint(hashes.SHA256()).hex() == AMAZON_ROOT_CA_1_SHA256):
                return cert.public_bytes(serialization.Encoding.PEM)
    raise BackendError("Amazon Root CA 1 is in neither certifi's bundle nor the system store")


def s3_url(bucket: str, key: str, region: str) -> str:
    """The path-style S3 URL that goes inside `${aws:iot:s3-presigned-url:...}`."""
    return f"https://s3.{region}.amazonaws.com/{bucket}/{quote(key, safe='/')}"


class AwsBackend:
    """`Backend` on AWS IoT Core + S3."""

    name = "aws"

    def __init__(self, region: str | None = None, endpoint_url: str | None = None,
                 bucket: str | None = None, role_arn: str | None = None,
                 progress: bool = True, session: Any = None):
        import boto3
        from botocore.config import Config
        from botocore.exceptions import NoRegionError

        self.bucket = bucket
        self.role_arn = role_arn
        self._endpoint_url = endpoint_url
        self._signer: Any = None  # AWS Signer client, made when first needed
        self.progress = progress
        cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10,
                     read_timeout=30)
        self._session = session or boto3.session.Session(region_name=region)
        try:
            self.iot = self._session.client("iot", endpoint_url=endpoint_url, config=cfg)
            self.s3 = self._session.client("s3", endpoint_url=endpoint_url, config=cfg)
        except NoRegionError:
            raise BackendError("no AWS region: use --region or set AWS_REGION") from None
        self.region: str = self.iot.meta.region_name
        self._endpoint: Endpoint | None = None
        self._data: Any = None  # the IoT data-plane client, made when first needed
        # (job, thing) -> ((status, executionNumber, lastUpdatedAt), detailsMap, versionNumber)
        self._details: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, str], int]] = {}

    # -- errors ----------------------------------------------------------------------------
    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """Turn boto3/botocore failures into one-line BackendErrors naming the step."""
        from botocore.exceptions import (BotoCoreError, ClientError, NoCredentialsError,
                                         PartialCredentialsError)
        try:
            yield
        except ClientError as e:
            err = e.response.get("Error", {})
            code = err.get("Code", "Error")
            msg = " ".join(str(err.get("Message") or "").split())
            raise BackendError(f"{what}: {code}" + (f": {msg}" if msg else ""), code) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise BackendError(f"{what}: no AWS credentials (set AWS_PROFILE or "
                               "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)") from None
        except BotoCoreError as e:
            raise BackendError(f"{what}: {' '.join(str(e).split())}") from None

    @staticmethod
    def _code(e: Exception) -> str:
        return getattr(e, "response", {}).get("Error", {}).get("Code", "")

    # -- things ----------------------------------------------------------------------------
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            with self._call("describe endpoint"):
                host = self.iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
            self._endpoint = Endpoint(host=host, port=MQTT_PORT, ca_pem=amazon_root_ca())
        return self._endpoint

    def provision(self, thing_name: str) -> ThingCredentials:
        from botocore.exceptions import ClientError

        endpoint = self.endpoint()
        with self._call(f"create thing {thing_name}"):
            try:
                arn = self.iot.create_thing(thingName=thing_name)["thingArn"]
            except ClientError as e:
                if self._code(e) != "ResourceAlreadyExistsException":
                    raise
                arn = self.iot.describe_thing(thingName=thing_name)["thingArn"]
        partition, region, account = self._arn_parts(arn)
        policy = device_policy(partition, region, account)
        with self._call("create device policy"):
            try:
                self.iot.create_policy(policyName=DEVICE_POLICY, policyDocument=json.dumps(policy))
            except ClientError as e:
                if self._code(e) != "ResourceAlreadyExistsException":
                    raise
                # made by an older fota: give it what this version's devices need
                have = self.iot.get_policy(policyName=DEVICE_POLICY)["policyDocument"]
                if json.loads(have) != policy:
                    self.iot.create_policy_version(policyName=DEVICE_POLICY,
                                                   policyDocument=json.dumps(policy),
                                                   setAsDefault=True)
        with self._call(f"create certificate for {thing_name}"):
            cert = self.iot.create_keys_and_certificate(setAsActive=True)
        with self._call(f"attach policy and certificate to {thing_name}"):
            self.iot.attach_policy(policyName=DEVICE_POLICY, target=cert["certificateArn"])
            self.iot.attach_thing_principal(thingName=thing_name,
                                            principal=cert["certificateArn"])
        return ThingCredentials(
            thing_name=thing_name,
            certificate_pem=cert["certificatePem"].encode(),
            private_key_pem=cert["keyPair"]["PrivateKey"].encode(),
            certificate_id=cert["certificateId"],
            endpoint=endpoint,
        )

    def retire_certificates(self, thing_name: str, keep: str) -> list[str]:
        from botocore.exceptions import ClientError

        with self._call(f"list the certificates of {thing_name}"):
            principals = [arn for page in self.iot.get_paginator("list_thing_principals").paginate(
                thingName=thing_name) for arn in page["principals"]]
        retired = []
        for arn in principals:
            cert_id = arn.rsplit("/", 1)[-1]
            if ":cert/" not in arn or cert_id == keep:
                continue  # the new certificate, or not a certificate (e.g. a Cognito identity)
            with self._call(f"retire certificate {cert_id}"):
                # detaching is asynchronous on AWS: this thing may still be listed
                others = [t for page in self.iot.get_paginator("list_principal_things").paginate(
                    principal=arn) for t in page["things"] if t != thing_name]
                if not others:
                    self.iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
                    try:
                        self.iot.detach_policy(policyName=DEVICE_POLICY, target=arn)
                    except ClientError as e:
                        if self._code(e) != "ResourceNotFoundException":
                            raise
                    retired.append(cert_id)
                self.iot.detach_thing_principal(thingName=thing_name, principal=arn)
        return retired

    @staticmethod
    def _arn_parts(arn: str) -> tuple[str, str, str]:
        parts = arn.split(":")
        if len(parts) < 6 or parts[0] != "arn":
            raise BackendError(f"unexpected ARN from AWS IoT: {arn}")
        return parts[1], parts[3], parts[4]

    @contextmanager
    def _named(self, kind: Kind, name: str) -> Iterator[None]:
        """A call on a job, thing or group the user named: NotFound if AWS has none."""
        from botocore.exceptions import ClientError

        with self._call(f"{kind} {name}"):
            try:
                yield
            except ClientError as e:
                if self._code(e) == "ResourceNotFoundException":
                    raise NotFound(kind, name, f"in {self.region}") from None
                raise

    def thing_arn(self, thing_name: str) -> str:
        with self._named("thing", thing_name):
            return self.iot.describe_thing(thingName=thing_name)["thingArn"]

    def group_arn(self, group: str) -> str:
        with self._named("group", group):
            return self.iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]

    def names(self, kind: Kind) -> list[str]:
        op, key, field = {"job": ("list_jobs", "jobs", "jobId"),
                          "thing": ("list_things", "things", "thingName"),
                          "group": ("list_thing_groups", "thingGroups", "groupName")}[kind]
        out: list[str] = []
        with self._call(f"list the {kind}s"):
            for page in self.iot.get_paginator(op).paginate():
                out += [item[field] for item in page.get(key, [])]
                if len(out) >= MAX_NAMES:
                    break
        return out[:MAX_NAMES]

    def group_members(self, group: str) -> list[str]:
        out: list[str] = []
        with self._named("group", group):
            for page in self.iot.get_paginator("list_things_in_thing_group").paginate(
                    thingGroupName=group, recursive=True):
                out += page.get("things", [])
        return list(dict.fromkeys(out))

    def target_things(self, job: JobInfo) -> list[str]:
        # AWS lists a job's executions, not the things it has yet to queue: the things named
        # by its targets are read here. A group the job has finished rolling out to adds none
        # (its members are those with an execution); of a cancelled job every group does, for
        # AWS does not say how far it had got.
        out: list[str] = []
        for arn in job.targets:
            kind, _, name = arn.split(":", 5)[-1].partition("/")
            if kind == "thing":
                out.append(name)
            elif kind == "thinggroup" and (job.status == "CANCELED"
                                           or arn in job.processing_targets):
                with self._call(f"things in group {name}"):
                    for page in self.iot.get_paginator("list_things_in_thing_group").paginate(
                            thingGroupName=name, recursive=True):
                        out += page.get("things", [])
        return list(dict.fromkeys(out))

    def create_thing_group(self, group: str, things: list[str]) -> str:
        from botocore.exceptions import ClientError

        with self._call(f"create thing group {group}"):
            try:
                arn = self.iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
            except ClientError as e:
                if self._code(e) != "ResourceAlreadyExistsException":
                    raise
                arn = self.group_arn(group)
        for thing in things:
            self.thing_arn(thing)  # a clear "not found" before AWS's own message
            with self._call(f"add {thing} to thing group {group}"):
                self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        return arn

    # -- firmware store ----------------------------------------------------------------------
    def _ensure_bucket(self) -> str:
        from botocore.exceptions import ClientError

        if not self.bucket:
            raise BackendError("no S3 bucket: use --bucket or set FOTA_BUCKET")
        with self._call(f"bucket {self.bucket}"):
            try:
                self.s3.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if self._code(e) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                args: dict[str, Any] = {"Bucket": self.bucket}
                if self.region != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                self.s3.create_bucket(**args)
        return self.bucket

    def upload(self, path: Path, key: str) -> str:
        bucket = self._ensure_bucket()
        size = path.stat().st_size
        callback: Callable[[int], Any] | None = None
        bar = None
        if self.progress and size >= LARGE_UPLOAD:
            from tqdm import tqdm
            bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"upload {path.name}",
                       disable=None, leave=False)
            callback = bar.update
        try:
            with self._call(f"upload s3://{bucket}/{key}"):
                self.s3.upload_file(str(path), bucket, key, Callback=callback,
                                    ExtraArgs={"ContentType": "application/octet-stream"})
        finally:
            if bar is not None:
                bar.close()
        return s3_url(bucket, key, self.region)

    # -- jobs ------------------------------------------------------------------------------
    def create_stream(self, stream_id: str, files: list[tuple[int, str]], description: str = "") -> int:
        """An AWS IoT stream (MQTT-based file delivery) over objects in the bucket: `files` are
        (file id, key); AWS IoT reads them with the role (--role-arn). Returns the version."""
        args: dict[str, Any] = {
            "streamId": stream_id,
            "files": [{"fileId": fid, "s3Location": {"bucket": self.bucket, "key": key}}
                      for fid, key in files],
            "roleArn": self.role_arn,
        }
        if description:
            args["description"] = description
        with self._call(f"create stream {stream_id}"):
            return int(self.iot.create_stream(**args)["streamVersion"])

    # -- OTA Update Manager ------------------------------------------------------------------
    def check_signing_profile(self, name: str) -> dict[str, Any]:
        """An AWS Signer profile that AWS IoT may sign OTA files with: it must exist and be
        Active. Returns GetSigningProfile's answer."""
        from botocore.exceptions import ClientError

        if self._signer is None:
            self._signer = self._session.client("signer", endpoint_url=self._endpoint_url)
        with self._call(f"AWS Signer profile {name}"):
            try:
                profile = self._signer.get_signing_profile(profileName=name)
            except ClientError as e:
                if self._code(e) == "ResourceNotFoundException":
                    raise BackendError(f"no AWS Signer profile {name} (create one with `aws "
                                       "signer put-signing-profile --platform-id "
                                       "AmazonFreeRTOS-Default ...`)") from None
                raise
        if profile.get("status") not in (None, "Active"):
            raise BackendError(f"AWS Signer profile {name} is {profile.get('status')}, not Active")
        return profile

    def create_ota_update(self, ota_id: str, targets: list[str], files: list[OtaFile],
                          protocol: str, rollout: Rollout, certificate_pem: bytes | None = None,
                          certfile: str = "", signing_profile: str | None = None,
                          poll: float = 2.0, wait: float = 300.0) -> str:
        """Several files as one OTA update of AWS's OTA Update Manager (CreateOTAUpdate), which
        creates the AWS IoT job `AFR_OTA-<ota_id>` with the afr_ota document; returns the job id
        once AWS has made it (GetOTAUpdate: CREATE_COMPLETE).

        Code signing is either custom (each file's own signature, `certificate_pem` as the
        certificate chain named `certfile` on the device) or AWS Signer (`signing_profile`: AWS
        signs the uploaded file and writes the signed copy under `signed/<ota_id>/` in the
        bucket). Over MQTT with custom signing the files come from a stream made here (id =
        ota_id, the same file ids); otherwise from their S3 objects."""
        if not self.role_arn:
            raise BackendError("no role for OTA updates: use --role-arn or set "
                               "FOTA_PRESIGN_ROLE_ARN (AWS IoT uses it to read the bucket, make "
                               "the stream and the job)")
        bucket = self._ensure_bucket()
        use_stream = protocol == "mqtt" and signing_profile is None
        if use_stream:
            self.create_stream(ota_id, [(f.file_id, f.key) for f in files],
                               f"OTA update {ota_id}")
        entries = []
        for f in files:
            entry: dict[str, Any] = {"fileName": f.filepath, "fileType": 0,
                                     "fileVersion": f.version,
                                     "attributes": {"kind": f.kind, "sha256": f.manifest["sha256"]}}
            if use_stream:
                entry["fileLocation"] = {"stream": {"streamId": ota_id, "fileId": f.file_id}}
            else:
                entry["fileLocation"] = {"s3Location": {"bucket": bucket, "key": f.key}}
            if signing_profile is not None:
                entry["codeSigning"] = {"startSigningJobParameter": {
                    "signingProfileName": signing_profile,
                    "destination": {"s3Destination": {"bucket": bucket,
                                                      "prefix": f"signed/{ota_id}/"}}}}
            else:
                if certificate_pem is None:
                    raise BackendError("custom code signing needs the code-signing certificate "
                                       "(--signing-cert CERT.pem)")
                entry["codeSigning"] = {"customCodeSigning": {
                    "signature": {"inlineDocument": signature_bytes(f)},
                    "certificateChain": {"certificateName": certfile,
                                         "inlineDocument": certificate_pem.decode()},
                    "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA"}}
            entries.append(entry)
        args: dict[str, Any] = {
            "otaUpdateId": ota_id, "targets": targets, "targetSelection": "SNAPSHOT",
            "protocols": ["MQTT"] if protocol == "mqtt" else ["HTTP"],
            "files": entries, "roleArn": self.role_arn,
            "description": f"{len(files)} files: " + ", ".join(
                f"{f.file_id}={f.filepath} {f.version}" for f in files)[:2000],
        }
        if protocol != "mqtt":
            args["awsJobPresignedUrlConfig"] = {"expiresInSec": rollout.presigned_expires_sec}
        rate = rollout.rollout_config()  # AwsJobExecutionsRolloutConfig: the same fields
        if rate:
            args["awsJobExecutionsRolloutConfig"] = rate
        if rollout.abort_failure_percent is not None:
            args["awsJobAbortConfig"] = {"abortCriteriaList": [{
                "failureType": "ALL", "action": "CANCEL",
                "thresholdPercentage": float(rollout.abort_failure_percent),
                "minNumberOfExecutedThings": rollout.abort_min_executed}]}
        if rollout.step_timeout_minutes:
            args["awsJobTimeoutConfig"] = {"inProgressTimeoutInMinutes": rollout.step_timeout_minutes}
        with self._call(f"create OTA update {ota_id}"):
            self.iot.create_ota_update(**args)
        return self.wait_ota_update(ota_id, poll, wait)

    def wait_ota_update(self, ota_id: str, poll: float = 2.0, wait: float = 300.0) -> str:
        """Wait until AWS has made the OTA update's job; its id. BackendError on CREATE_FAILED
        (with AWS's reason) or after `wait` seconds."""
        from tqdm import tqdm

        deadline = time.monotonic() + wait
        # AWS signs, makes the stream and the job: often tens of seconds; shown on a terminal
        bar = tqdm(desc=f"OTA update {ota_id}", bar_format="{desc}: {postfix} ({elapsed})",
                   disable=None if self.progress else True, leave=False)
        try:
            while True:
                info = self.describe_ota_update(ota_id)
                status = info.get("otaUpdateStatus")
                bar.set_postfix_str(str(status))
                if status == "CREATE_COMPLETE":
                    if not info.get("awsIotJobId"):
                        raise BackendError(f"OTA update {ota_id} is CREATE_COMPLETE without a job")
                    return str(info["awsIotJobId"])
                if status == "CREATE_FAILED":
                    err = info.get("errorInfo") or {}
                    raise BackendError(f"OTA update {ota_id}: CREATE_FAILED: {err.get('code', '')}: "
                                       f"{err.get('message', '')}".rstrip(": "))
                if status not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
                    raise BackendError(f"OTA update {ota_id} is {status}")
                if time.monotonic() >= deadline:
                    raise BackendError(f"OTA update {ota_id} still {status} after {wait:.0f} s")
                time.sleep(poll)
        finally:
            bar.close()

    def resolve_job(self, name: str) -> str:
        """The job to follow for `name`: the job of that id, or else the job AWS made for the
        OTA update of that id (`AFR_OTA-<id>`). BackendError if neither exists, or if the OTA
        update has no job (yet, or because its creation failed: AWS's reason)."""
        from botocore.exceptions import ClientError

        with self._call(f"job {name}"):
            try:
                self.iot.describe_job(jobId=name)
                return name
            except ClientError as e:
                if self._code(e) != "ResourceNotFoundException":
                    raise
        try:
            info = self.describe_ota_update(name)
        except BackendError as e:  # no OTA update either, or none that may be read here
            nor = "(nor an OTA update of that id) " if e.code == "ResourceNotFoundException" else ""
            raise NotFound("job", name, f"{nor}in {self.region}") from None
        status = info.get("otaUpdateStatus")
        if status == "CREATE_FAILED":
            err = info.get("errorInfo") or {}
            raise BackendError(f"OTA update {name}: CREATE_FAILED: {err.get('code', '')}: "
                               f"{err.get('message', '')}".rstrip(": "))
        if not info.get("awsIotJobId"):
            raise BackendError(f"OTA update {name} is {status}: AWS has not made its job yet")
        return str(info["awsIotJobId"])

    def describe_ota_update(self, ota_id: str) -> dict[str, Any]:
        """GetOTAUpdate's otaUpdateInfo."""
        with self._call(f"OTA update {ota_id}"):
            return dict(self.iot.get_ota_update(otaUpdateId=ota_id)["otaUpdateInfo"])

    def create_job(self, job_id: str, targets: list[str], document: dict[str, Any],
                   rollout: Rollout, description: str | None = None) -> JobInfo:
        args: dict[str, Any] = {
            "jobId": job_id,
            "targets": targets,
            "document": json.dumps(document, separators=(",", ":")),
            "targetSelection": "SNAPSHOT",
            "description": description or f"FOTA {document.get('version', '')}".strip(),
        }
        if "${aws:iot:s3-presigned-url:" in args["document"]:
            if not self.role_arn:
                raise BackendError("no role for pre-signed URLs: use --role-arn or set "
                                   "FOTA_PRESIGN_ROLE_ARN")
            args["presignedUrlConfig"] = {"roleArn": self.role_arn,
                                          "expiresInSec": rollout.presigned_expires_sec}
        args.update(rollout.job_config())
        with self._call(f"create job {job_id}"):
            self.iot.create_job(**args)
        return self.describe_job(job_id)

    def describe_job(self, job_id: str) -> JobInfo:
        with self._named("job", job_id):
            job = self.iot.describe_job(jobId=job_id)["job"]
            doc = self.iot.get_job_document(jobId=job_id)["document"]
        details = job.get("jobProcessDetails") or {}
        counts = {state: int(details[k]) for k, state in _COUNT_KEYS.items() if k in details}
        created = job.get("createdAt")
        try:
            document = json.loads(doc)
        except (TypeError, ValueError):
            document = {"raw": doc}
        return JobInfo(
            job_id=job["jobId"], status=job.get("status", "IN_PROGRESS"), document=document,
            targets=list(job.get("targets") or []), counts=counts,
            created_at=created.timestamp() if hasattr(created, "timestamp") else created,
            reason_code=job.get("reasonCode"),
            target_selection=job.get("targetSelection") or "SNAPSHOT",
            processing_targets=list(details.get("processingTargets") or []),
            rollout=dict(job.get("jobExecutionsRolloutConfig") or {}),
            description=job.get("description"),
        )

    def list_executions(self, job_id: str) -> list[Execution]:
        out: list[Execution] = []
        with self._call(f"executions of job {job_id}"):
            pages = self.iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id)
            for page in pages:
                for item in page.get("executionSummaries", []):
                    s = item.get("jobExecutionSummary", {})
                    thing = item["thingArn"].rsplit("/", 1)[-1]
                    out.append(Execution(
                        job_id=job_id, thing_name=thing, status=s.get("status", "QUEUED"),
                        execution_number=int(s.get("executionNumber", 0)),
                        queued_at=_ts(s.get("queuedAt")), started_at=_ts(s.get("startedAt")),
                        last_updated_at=_ts(s.get("lastUpdatedAt"))))
            for ex in out:
                if ex.status == "QUEUED":
                    continue  # nothing reported yet: spare a call per waiting device
                # statusDetails are only in the full execution: describe the ones that changed
                # since the last call (a --watch over a large fleet stays within API rates)
                mark = (ex.status, ex.execution_number, ex.last_updated_at)
                cached = self._details.get((job_id, ex.thing_name))
                if cached is None or cached[0] != mark:
                    e = self.iot.describe_job_execution(jobId=job_id, thingName=ex.thing_name)
                    e = e["execution"]
                    details = dict((e.get("statusDetails") or {}).get("detailsMap") or {})
                    cached = (mark, details, int(e.get("versionNumber", 0)))
                    self._details[(job_id, ex.thing_name)] = cached
                ex.status_details = dict(cached[1])
                ex.version_number = cached[2]
        return out

    # -- the fleet: shadows (IoT data plane), a thing's executions, the jobs ---------------------
    @property
    def data(self) -> Any:
        """The IoT data-plane client (GetThingShadow), on the account's ATS data endpoint, or
        `endpoint_url`, or the one AWS_ENDPOINT_URL_IOT_DATA_PLANE or AWS_ENDPOINT_URL names (botocore
        reads them itself when no endpoint is passed)."""
        if self._data is None:
            url = self._endpoint_url
            own = any(os.environ.get(k) for k in ("AWS_ENDPOINT_URL_IOT_DATA_PLANE", "AWS_ENDPOINT_URL")) \
                and os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true"
            if url is None and not own:
                with self._call("describe the data endpoint"):
                    url = "https://" + self.iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
            self._data = self._session.client("iot-data", config=self.iot.meta.config,
                                              **({"endpoint_url": url} if url else {}))
        return self._data

    def thing_shadow(self, thing_name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        with self._call(f"shadow of {thing_name}"):
            try:
                body = self.data.get_thing_shadow(thingName=thing_name)["payload"].read()
            except ClientError as e:
                if self._code(e) == "ResourceNotFoundException":
                    return None  # the thing never reported
                raise
        try:
            doc = json.loads(body)
        except ValueError:
            raise BackendError(f"shadow of {thing_name}: not JSON") from None
        return doc if isinstance(doc, dict) else None

    def things_in_group(self, group: str) -> list[str]:
        out: list[str] = []
        with self._named("group", group):
            for page in self.iot.get_paginator("list_things_in_thing_group").paginate(
                    thingGroupName=group, recursive=True):
                out += page.get("things", [])
        return out

    def thing_executions(self, thing_name: str) -> list[Execution]:
        self.thing_arn(thing_name)  # NotFound for a thing that does not exist
        out: list[Execution] = []
        with self._call(f"job executions of {thing_name}"):
            for page in self.iot.get_paginator("list_job_executions_for_thing").paginate(
                    thingName=thing_name):
                for item in page.get("executionSummaries", []):
                    s = item.get("jobExecutionSummary", {})
                    out.append(Execution(
                        job_id=item["jobId"], thing_name=thing_name, status=s.get("status", "QUEUED"),
                        execution_number=int(s.get("executionNumber", 0)),
                        queued_at=_ts(s.get("queuedAt")), started_at=_ts(s.get("startedAt")),
                        last_updated_at=_ts(s.get("lastUpdatedAt"))))
            for ex in out:
                if ex.status == "QUEUED":
                    continue  # nothing reported yet
                e = self.iot.describe_job_execution(jobId=ex.job_id, thingName=thing_name,
                                                    executionNumber=ex.execution_number)["execution"]
                ex.status_details = dict((e.get("statusDetails") or {}).get("detailsMap") or {})
                ex.version_number = int(e.get("versionNumber", 0))
        return out

    def listed_jobs(self) -> list[ListedJob]:
        # ListJobs' summaries (JobSummary) carry each job's status and times. The Jobs control
        # plane "is designed for a low volume of calls" (AWS IoT Developer Guide, "AWS IoT jobs
        # API operations") and its API rates are account quotas: a job is described only when
        # it is to be shown. The API does not say in what order ListJobs lists: every page is
        # read, then sorted.
        out: list[ListedJob] = []
        with self._call("list the jobs"):
            pages = self.iot.get_paginator("list_jobs").paginate(
                PaginationConfig={"PageSize": LIST_PAGE})
            for page in pages:
                for j in page.get("jobs", []):
                    out.append(ListedJob(
                        job_id=j["jobId"], status=j.get("status", "IN_PROGRESS"),
                        created_at=_ts(j.get("createdAt")),
                        last_updated_at=_ts(j.get("lastUpdatedAt")),
                        completed_at=_ts(j.get("completedAt"))))
        return newest_first(out)

    def list_jobs(self, limit: int | None = None) -> list[JobInfo]:
        out: list[JobInfo] = []
        for listed in self.listed_jobs()[:limit]:
            job_id = listed.job_id
            with self._call(f"job {job_id}"):
                try:
                    job = self.iot.describe_job(jobId=job_id)["job"]
                except Exception as e:
                    if self._code(e) == "ResourceNotFoundException":
                        continue  # deleted meanwhile
                    raise
            details = job.get("jobProcessDetails") or {}
            out.append(JobInfo(
                job_id=job["jobId"], status=job.get("status", "IN_PROGRESS"), document={},
                targets=list(job.get("targets") or []),
                counts={state: int(details[k]) for k, state in _COUNT_KEYS.items() if k in details},
                created_at=_ts(job.get("createdAt")),
                reason_code=job.get("reasonCode"), target_selection=job.get("targetSelection") or "SNAPSHOT",
                processing_targets=list(details.get("processingTargets") or []),
                rollout=dict(job.get("jobExecutionsRolloutConfig") or {})))
        return out

    def cancel_job(self, job_id: str, force: bool = False, reason: str | None = None) -> JobInfo:
        args: dict[str, Any] = {"jobId": job_id, "force": force}
        if reason:
            args["comment"] = reason[:2028]
        with self._named("job", job_id):
            self.iot.cancel_job(**args)
        return self.describe_job(job_id)


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def from_env(region: str | None = None, endpoint_url: str | None = None,
             bucket: str | None = None, role_arn: str | None = None,
             progress: bool = True) -> AwsBackend:
    """An AwsBackend with options falling back to FOTA_BUCKET and FOTA_PRESIGN_ROLE_ARN."""
    return AwsBackend(region=region, endpoint_url=endpoint_url,
                      bucket=bucket or os.environ.get("FOTA_BUCKET") or None,
                      role_arn=role_arn or os.environ.get("FOTA_PRESIGN_ROLE_ARN") or None,
                      progress=progress)
