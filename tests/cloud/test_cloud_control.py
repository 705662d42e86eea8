"""The control API (and LocalBackend) and who may connect to the broker."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.cloud.conftest import mqtt_connect, unique
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fotatools.backend import BackendError, NotFound
from fotatools.cloud.ca import LocalCA


def raw_call(cloud, op: str, body: bytes, token: str | None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{cloud.control_url}/{op}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_control_api_needs_the_token(cloud, token):
    status, body = raw_call(cloud, "ListThings", b"{}", token)
    assert status == 401 and body["__type"] == "UnauthorizedException"


def test_control_api_rejects_bad_requests(cloud):
    assert raw_call(cloud, "NoSuchOperation", b"{}", cloud.token)[0] == 404
    status, body = raw_call(cloud, "ListThings", b"{not json", cloud.token)
    assert status == 400 and body["__type"] == "InvalidRequestException"
    assert raw_call(cloud, "ListThings", b"[]", cloud.token)[0] == 400
    assert raw_call(cloud, "DescribeThing", b"{}", cloud.token)[0] == 400


def test_provision_issues_a_certificate_for_the_thing(backend, cloud):
    name = unique("prov")
    creds = backend.provision(name)
    cert = x509.load_pem_x509_certificate(creds.certificate_pem)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == name
    ca = x509.load_pem_x509_certificate(creds.endpoint.ca_pem)
    cert.verify_directly_issued_by(ca)
    assert creds.certificate_id == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    key = serialization.load_pem_private_key(creds.private_key_pem, None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert (creds.endpoint.host, creds.endpoint.port) == ("localhost", cloud.mqtt_port)
    thing = backend.call("DescribeThing", {"thingName": name})
    assert thing["thingArn"] == f"arn:aws:iot:local:000000000000:thing/{name}"
    assert thing["certificates"] == [creds.certificate_id]
    # A second provisioning issues another certificate; the thing stays one thing.
    again = backend.provision(name)
    assert again.certificate_id != creds.certificate_id
    assert len(backend.call("DescribeThing", {"thingName": name})["certificates"]) == 2


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 129, "dot.ted", "plus+"])
def test_bad_thing_names(backend, name):
    with pytest.raises(BackendError, match="InvalidRequest"):
        backend.provision(name)


def _job(backend, **over):
    thing = unique("cj")
    backend.call("CreateThing", {"thingName": thing})
    params = {"jobId": unique("cj"), "targets": [backend.thing_arn(thing)], "document": "{}"}
    params.update(over)
    return params


BAD_JOBS = [
    ({"jobId": "bad id"}, "jobId"),
    ({"jobId": "x" * 65}, "jobId"),
    ({"document": "{not json"}, "not valid JSON"),
    ({"document": "fota"}, "not valid JSON"),
    ({"document": json.dumps({"pad": "x" * 32800})}, "larger than 32768"),
    ({"document": json.dumps({"u": "${aws:iot:s3-presigned-url:ftp://nowhere}"})}, "placeholder"),
    ({"targets": []}, "non-empty"),
    ({"targets": ["thing-name"]}, "ARN"),
    ({"targets": ["arn:aws:iot:local:000000000000:thing/nobody-here"]}, "does not exist"),
    ({"targets": ["arn:aws:iot:local:000000000000:thinggroup/no-group"]}, "does not exist"),
    ({"targetSelection": "SOMETIMES"}, "targetSelection"),
    ({"jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}, "maximumPerMinute"),
    ({"jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}}, "maximumPerMinute"),
    ({"jobExecutionsRolloutConfig": {"exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 9,
                                                          "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}}},
     "incrementFactor"),
    ({"abortConfig": {"criteriaList": []}}, "criteriaList"),
    ({"abortConfig": {"criteriaList": [{"failureType": "SOME", "action": "CANCEL", "thresholdPercentage": 5,
                                        "minNumberOfExecutedThings": 1}]}}, "failureType"),
    ({"abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 101,
                                        "minNumberOfExecutedThings": 1}]}}, "thresholdPercentage"),
    ({"abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 10.999,
                                        "minNumberOfExecutedThings": 1}]}}, "thresholdPercentage"),
    ({"abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 10,
                                        "minNumberOfExecutedThings": 0}]}}, "minNumberOfExecutedThings"),
    ({"abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "STOP", "thresholdPercentage": 10,
                                        "minNumberOfExecutedThings": 1}]}}, "action"),
    ({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}, "inProgressTimeoutInMinutes"),
    ({"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}, "inProgressTimeoutInMinutes"),
    ({"presignedUrlConfig": {"expiresInSec": 59}}, "expiresInSec"),
    ({"presignedUrlConfig": {"expiresInSec": 3601}}, "expiresInSec"),
    ({"jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 11}]}},
     "numberOfRetries"),
    ({"jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "REJECTED", "numberOfRetries": 1}]}},
     "failureType"),
]


@pytest.mark.parametrize("override,message", BAD_JOBS)
def test_create_job_rejects_bad_input(backend, override, message):
    params = _job(backend, **override)
    with pytest.raises(BackendError, match=message):
        backend.call("CreateJob", params)
    if "jobId" not in override:
        with pytest.raises(NotFound, match="no job"):
            backend.describe_job(params["jobId"])


def test_duplicate_job_and_unknown_job(backend):
    params = _job(backend)
    backend.call("CreateJob", params)
    with pytest.raises(BackendError, match="ResourceAlreadyExists"):
        backend.call("CreateJob", params)
    for op in ("DescribeJob", "GetJobDocument", "CancelJob", "DeleteJob", "ListJobExecutionsForJob"):
        with pytest.raises(BackendError, match="ResourceNotFound"):
            backend.call(op, {"jobId": unique("nojob")})


def test_describe_job_is_shaped_like_boto3(backend):
    params = _job(backend, description="d", presignedUrlConfig={"expiresInSec": 600, "roleArn": "arn:r"},
                  jobExecutionsRolloutConfig={"maximumPerMinute": 50})
    backend.call("CreateJob", params)
    job = backend.call("DescribeJob", {"jobId": params["jobId"]})["job"]
    assert job["jobArn"] == f"arn:aws:iot:local:000000000000:job/{params['jobId']}"
    assert job["status"] == "IN_PROGRESS" and job["targetSelection"] == "SNAPSHOT"
    assert job["presignedUrlConfig"] == {"expiresInSec": 600, "roleArn": "arn:r"}
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 50}
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 1
    assert job["description"] == "d" and job["forceCanceled"] is False
    listed = backend.call("ListJobs")["jobs"]
    assert params["jobId"] in [j["jobId"] for j in listed]


def test_delete_job(backend, make_device):
    d = make_device()
    params = _job(backend, targets=[backend.thing_arn(d.name)])
    backend.call("CreateJob", params)
    d.request("start-next")
    with pytest.raises(BackendError, match="force"):
        backend.delete_job(params["jobId"])
    d.clear()
    backend.delete_job(params["jobId"], force=True)
    assert "execution" not in d.event("notify-next")
    kind, body = d.request(f"{params['jobId']}/update", {"status": "SUCCEEDED"})
    assert (kind, body["code"]) == ("rejected", "ResourceNotFound")


def test_only_certificates_of_the_local_ca_connect(backend, cloud, tmp_path: Path):
    creds = backend.provision(unique("ok"))
    assert mqtt_connect(cloud, tmp_path, creds.certificate_pem, creds.private_key_pem) == "connected"
    assert mqtt_connect(cloud, tmp_path, None, None) != "connected"
    foreign = LocalCA(tmp_path / "foreign").ensure()
    issued = foreign.issue(creds.thing_name)
    assert mqtt_connect(cloud, tmp_path, issued.cert_pem, issued.key_pem) != "connected"


def test_backend_errors_are_one_line(backend):
    with pytest.raises(NotFound) as e:
        backend.describe_job(unique("missing"))
    assert "\n" not in str(e.value) and e.value.code == "ResourceNotFoundException"
    with pytest.raises(BackendError, match="no such file"):
        backend.upload(Path("/nonexistent/firmware.bin"), "k")
