"""The control API of the AWS IoT stand-in: JSON over HTTP on 127.0.0.1.

`POST /<Operation>` with a JSON object of boto3-style parameters; the answer is the JSON that
boto3 would return (datetimes as epoch seconds). Errors come back with an HTTP error status and
`{"__type": "<AWS exception name>", "message": "..."}`. Every request carries
`Authorization: Bearer <token>`, the token kept in the state folder (mode 0600).

Operations: DescribeEndpoint, CreateThing, DescribeThing, ListThings, Provision (thing,
certificate and key: CreateKeysAndCertificate + AttachThingPrincipal; the "policy" is the broker
ACL), DescribeCertificate, UpdateCertificate (INACTIVE or REVOKED: the broker refuses the
certificate from then on), ListThingPrincipals, DetachThingPrincipal, CreateThingGroup,
DescribeThingGroup, ListThingGroups, AddThingToThingGroup, RemoveThingFromThingGroup,
ListThingsInThingGroup, PutObject (`?bucket=&key=`, raw body), Presign, CreateJob, DescribeJob,
GetJobDocument, ListJobs, ListJobTargets (local: the things a job targets, as it saw them),
ListJobExecutionsForJob, ListJobExecutionsForThing, DescribeJobExecution, CancelJob,
CancelJobExecution, DeleteJob, CreateStream, DescribeStream, UpdateStream, DeleteStream,
ListStreams, GetThingShadow and UpdateThingShadow (the IoT data plane's: `thingName`,
optional `shadowName`; the answer is the shadow document itself; `payload`, a JSON object, for
an update), Status.
ListJobExecutionsForThing takes `includeDetails` (a local extension, as ListJobExecutionsForJob
does): each summary then carries statusDetails and versionNumber.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from .ca import LocalCA
from .jobs import ARN_PREFIX, ControlError, JobsEngine, thing_arn
from .serve import BackgroundServer
from .store import ObjectStore, StoreError, secret_file
from .shadow import CLASSIC, SHADOW_NAME_RE, ShadowEngine, ShadowRejected
from .streams import StreamsEngine

log = logging.getLogger("fotatools.cloud.control")

MAX_BODY = 1 << 20  # JSON requests
MAX_OBJECT = 64 << 20  # PutObject


def load_token(path: Path) -> str:
    """The control token kept in `path`, created on first use."""
    return secret_file(path, lambda: secrets.token_urlsafe(32))


class ControlApi:
    """The operations, independent of HTTP."""

    def __init__(self, engine: JobsEngine, store: ObjectStore, ca: LocalCA, mqtt_host: str,
                 mqtt_port: int, allow_thing: Callable[[str], None] = lambda name: None,
                 streams: StreamsEngine | None = None, shadows: ShadowEngine | None = None,
                 certificates_changed: Callable[[], None] = lambda: None):
        self.engine, self.store, self.ca = engine, store, ca
        self.streams = streams or StreamsEngine(engine.db, store)
        self.shadows = shadows or ShadowEngine(engine.db)
        self.allow_thing = allow_thing
        self.certificates_changed = certificates_changed  # a status changed: new revocation list
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.started = time.time()
        self.ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "DescribeEndpoint": self.describe_endpoint,
            "CreateThing": lambda p: engine.create_thing(_str(p, "thingName")),
            "DescribeThing": lambda p: engine.describe_thing(_str(p, "thingName")),
            "ListThings": lambda p: engine.list_things(),
            "Provision": self.provision,
            "DescribeCertificate": self.describe_certificate,
            "UpdateCertificate": self.update_certificate,
            "ListThingPrincipals": self.list_thing_principals,
            "DetachThingPrincipal": self.detach_thing_principal,
            "CreateThingGroup": self.create_thing_group,
            "AddThingToThingGroup": lambda p: engine.add_thing_to_group(_str(p, "thingGroupName"),
                                                                       _str(p, "thingName")),
            "RemoveThingFromThingGroup": lambda p: engine.remove_thing_from_group(
                _str(p, "thingGroupName"), _str(p, "thingName")),
            "DescribeThingGroup": lambda p: engine.describe_thing_group(_str(p, "thingGroupName")),
            "ListThingGroups": lambda p: engine.list_thing_groups(),
            "ListThingsInThingGroup": lambda p: engine.list_things_in_group(_str(p, "thingGroupName")),
            "Presign": self.presign,
            "CreateJob": engine.create_job,
            "DescribeJob": lambda p: engine.describe_job(_str(p, "jobId")),
            "GetJobDocument": lambda p: engine.get_job_document(_str(p, "jobId")),
            "ListJobs": lambda p: engine.list_jobs(p.get("status")),
            "ListJobExecutionsForJob": lambda p: engine.list_job_executions(
                _str(p, "jobId"), p.get("status"), bool(p.get("includeDetails", False))),
            "ListJobTargets": lambda p: engine.list_job_targets(_str(p, "jobId")),
            "ListJobExecutionsForThing": lambda p: engine.list_job_executions_for_thing(
                _str(p, "thingName"), bool(p.get("includeDetails", False))),
            "DescribeJobExecution": lambda p: engine.describe_job_execution(
                _str(p, "jobId"), _str(p, "thingName"), _opt_int(p, "executionNumber")),
            "CancelJob": engine.cancel_job,
            "CancelJobExecution": engine.cancel_job_execution,
            "DeleteJob": engine.delete_job,
            "CreateStream": self.streams.create_stream,
            "DescribeStream": lambda p: self.streams.describe_stream(_str(p, "streamId")),
            "UpdateStream": self.streams.update_stream,
            "DeleteStream": lambda p: self.streams.delete_stream(_str(p, "streamId")),
            "ListStreams": self.streams.list_streams,
            "GetThingShadow": self.get_thing_shadow,
            "UpdateThingShadow": self.update_thing_shadow,
            "Status": self.status,
        }

    def call(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        fn = self.ops.get(op)
        if fn is None:
            raise ControlError("UnknownOperationException", f"unknown operation {op!r}")
        return fn(params)

    def describe_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"endpointAddress": self.mqtt_host, "port": self.mqtt_port,
                "caCertificatePem": self.ca.cert_pem.decode(),
                "storeEndpoint": f"https://{self.store.host}:{self.store.port}",
                "region": "local", "accountId": ARN_PREFIX.split(":")[4]}

    def provision(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _str(params, "thingName")
        self.engine.create_thing(name)
        issued = self.ca.issue(name)
        cert_id = issued.certificate_id
        self.engine.add_certificate(cert_id, name, issued.cert_pem.decode())
        self.allow_thing(name)  # attach the "policy": the broker lets the thing use its topics
        return {"thingName": name, "thingArn": thing_arn(name), "certificateId": cert_id,
                "certificateArn": cert_arn(cert_id),
                "certificatePem": issued.cert_pem.decode(),
                "keyPair": {"PrivateKey": issued.key_pem.decode()}}

    def _certificate(self, cert_id: str) -> dict[str, Any]:
        row = self.engine.db.get_certificate(cert_id)
        if row is None:
            raise ControlError("ResourceNotFoundException", f"Certificate {cert_id} does not exist")
        return row

    def describe_certificate(self, params: dict[str, Any]) -> dict[str, Any]:
        row = self._certificate(_str(params, "certificateId"))
        return {"certificateDescription": {
            "certificateId": row["certificate_id"], "certificateArn": cert_arn(row["certificate_id"]),
            "status": row["status"], "certificatePem": row["certificate_pem"],
            "creationDate": row["created_at"]}}

    def update_certificate(self, params: dict[str, Any]) -> dict[str, Any]:
        cert_id, status = _str(params, "certificateId"), _str(params, "newStatus")
        if status not in CERT_STATUSES:
            raise ControlError("InvalidRequestException",
                               f"newStatus must be one of {', '.join(CERT_STATUSES)}, not {status!r}")
        if self._certificate(cert_id)["status"] != status:
            self.engine.db.set_certificate_status(cert_id, status)
            self.certificates_changed()
        return {}

    def list_thing_principals(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _str(params, "thingName")
        self.engine.describe_thing(name)  # ResourceNotFoundException for an unknown thing
        return {"principals": [cert_arn(c["certificate_id"]) for c in self.engine.db.certificates_of(name)]}

    def detach_thing_principal(self, params: dict[str, Any]) -> dict[str, Any]:
        name, principal = _str(params, "thingName"), _str(params, "principal")
        self.engine.describe_thing(name)
        prefix = f"{ARN_PREFIX}:cert/"
        if not principal.startswith(prefix):
            raise ControlError("InvalidRequestException", f"principal must be a certificate ARN ({prefix}...)")
        self._certificate(principal[len(prefix):])
        self.engine.db.detach_certificate(principal[len(prefix):], name)
        return {}

    def create_thing_group(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _str(params, "thingGroupName")
        things = params.get("things", [])
        if not isinstance(things, list):
            raise ControlError("InvalidRequestException", "things must be a list of thing names")
        out = self.engine.create_thing_group(name)
        for t in things:
            self.engine.add_thing_to_group(name, str(t))
        return out

    def presign(self, params: dict[str, Any]) -> dict[str, Any]:
        bucket, key = _str(params, "bucket"), _str(params, "key")
        expires = params.get("expiresInSec", 3600)
        if not isinstance(expires, int) or isinstance(expires, bool) or not 1 <= expires <= 604800:
            raise ControlError("InvalidRequestException", "expiresInSec must be an integer 1..604800")
        try:
            return {"url": self.store.presign(bucket, key, expires)}
        except StoreError as e:
            raise ControlError("InvalidRequestException", str(e)) from None

    def put_object(self, bucket: str, key: str, body: Any) -> dict[str, Any]:
        try:
            etag = self.store.put(bucket, key, body)
        except StoreError as e:
            raise ControlError("InvalidRequestException", str(e)) from None
        return {"bucket": bucket, "key": key, "eTag": etag,
                "url": f"https://s3.local.amazonaws.com/{bucket}/{key}",
                "size": self.store.path(bucket, key).stat().st_size}

    def _shadow_of(self, params: dict[str, Any]) -> tuple[str, str]:
        thing = _str(params, "thingName")
        self.engine.describe_thing(thing)  # ResourceNotFoundException for an unknown thing
        name = params.get("shadowName", CLASSIC)
        if not isinstance(name, str):
            raise ControlError("InvalidRequestException", "shadowName must be a string")
        if name != CLASSIC and not SHADOW_NAME_RE.match(name):  # AWS: [a-zA-Z0-9:_-]+, 1 to 64
            raise ControlError("InvalidRequestException",
                               "shadowName must be 1 to 64 characters of a-z A-Z 0-9 : _ -")
        return thing, name

    def get_thing_shadow(self, params: dict[str, Any]) -> dict[str, Any]:
        thing, name = self._shadow_of(params)
        doc = self.shadows.get_thing_shadow(thing, name)
        if doc is None:
            raise ControlError("ResourceNotFoundException", f"No shadow exists with name: '{name or thing}'")
        return doc

    def update_thing_shadow(self, params: dict[str, Any]) -> dict[str, Any]:
        thing, name = self._shadow_of(params)
        payload = params.get("payload")
        if not isinstance(payload, dict):
            raise ControlError("InvalidRequestException", "payload must be a JSON object")
        try:
            return self.shadows.update_thing_shadow(thing, json.dumps(payload).encode(), name)
        except ShadowRejected as r:
            kind = {409: "ConflictException", 413: "RequestEntityTooLargeException",
                    415: "UnsupportedDocumentEncodingException"}.get(r.code, "InvalidRequestException")
            raise ControlError(kind, r.message) from None

    def status(self, params: dict[str, Any]) -> dict[str, Any]:
        jobs: dict[str, int] = {}
        for j in self.engine.list_jobs()["jobs"]:
            jobs[j["status"]] = jobs.get(j["status"], 0) + 1
        return {"things": len(self.engine.list_things()["things"]), "jobs": jobs,
                "streams": len(self.engine.db.list_streams()),
                "uptimeSeconds": round(time.time() - self.started, 1), "minuteSeconds": self.engine.minute}


CERT_STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")


def cert_arn(cert_id: str) -> str:
    return f"{ARN_PREFIX}:cert/{cert_id}"


def _str(params: dict[str, Any], name: str) -> str:
    v = params.get(name)
    if not isinstance(v, str) or not v:
        raise ControlError("InvalidRequestException", f"{name} is required (a string)")
    return v


def _opt_int(params: dict[str, Any], name: str) -> int | None:
    v = params.get(name)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise ControlError("InvalidRequestException", f"{name} must be an integer")
    return v


class _Handler(BaseHTTPRequestHandler):
    server_version = "FotaLocalIoT/1.0"
    protocol_version = "HTTP/1.1"
    timeout = 120
    api: ControlApi
    token: str

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:  # say so, or a keep-alive client sends its next call into a closed socket
            self.send_header("Connection", "close")  # RFC 9112 section 9.6
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._reply(status, {"__type": kind, "message": message})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        auth = self.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            self.close_connection = True
            return self._error(401, "UnauthorizedException", "missing or wrong control token")
        parts = urlsplit(self.path)
        op = parts.path.strip("/")
        try:
            if op == "PutObject":
                if length > MAX_OBJECT:
                    self.close_connection = True
                    return self._error(413, "InvalidRequestException", "object too large")
                q = parse_qs(parts.query)
                bucket, key = q.get("bucket", [""])[0], q.get("key", [""])[0]
                result = self.api.put_object(bucket, key, _Limited(self.rfile, length))
                return self._reply(200, result)
            if length > MAX_BODY:
                self.close_connection = True
                return self._error(413, "InvalidRequestException", "request too large")
            raw = self.rfile.read(length) if length else b"{}"
            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                return self._error(400, "InvalidRequestException", "the request body is not JSON")
            if not isinstance(params, dict):
                return self._error(400, "InvalidRequestException", "the request body must be a JSON object")
            return self._reply(200, self.api.call(op, params))
        except ControlError as e:
            status = 404 if e.kind == "UnknownOperationException" else e.status
            return self._error(status, e.kind, e.message)
        except Exception as e:
            log.exception("control operation %s failed", op)
            return self._error(500, "InternalFailureException", f"{type(e).__name__}: {e}")

    def do_GET(self) -> None:  # noqa: N802
        self._error(405, "MethodNotAllowed", "use POST /<Operation>")


class _Limited:
    """A file-like view of exactly `n` bytes of a stream."""

    def __init__(self, f: Any, n: int):
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data


class ControlServer(BackgroundServer):
    name = "control"

    def __init__(self, api: ControlApi, token: str, port: int = 0):
        handler = type("Handler", (_Handler,), {"api": api, "token": token})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

