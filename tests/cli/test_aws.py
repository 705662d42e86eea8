"""AwsBackend against moto in server mode (boto3 over HTTP to a loopback port).

What moto does not implement, and how these tests deal with it:
- the Jobs device data plane (MQTT or iot-jobs-data): executions never leave QUEUED on their
  own. Where a test needs a device's progress it sets the execution's state in moto's model
  (the server runs in this process), as a device's UpdateJobExecution would, and then reads
  it back through the control-plane API like `fota status` does;
- thing groups as job targets are not expanded into per-thing executions (moto creates one
  execution named after the group), and jobProcessDetails counts are not maintained;
- policies are stored but not evaluated, and the IAM role is not assumed.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.cli.conftest import REGION, ROLE_ARN, unique
from fotatools.aws import AwsBackend, amazon_root_ca
from fotatools.backend import BackendError, NotFound, Rollout
from fotatools.provisioning import check_device_folder, write_device_folder


@pytest.fixture
def backend(moto, aws_env) -> AwsBackend:
    return AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN)


def test_endpoint_is_ats_with_amazon_root_ca(backend):
    ep = backend.endpoint()
    assert ep.host.endswith(f"-ats.iot.{REGION}.amazonaws.com") and ep.port == 8883
    ca = x509.load_pem_x509_certificate(ep.ca_pem)
    assert ca.subject.rfc4514_string() == "CN=Amazon Root CA 1,O=Amazon,C=US"
    assert ep.ca_pem == amazon_root_ca()


def test_provision_creates_cert_policy_and_device_folder(backend, tmp_path):
    thing = unique("dev")
    creds = backend.provision(thing)
    iot = backend.iot
    principals = iot.list_thing_principals(thingName=thing)["principals"]
    cert_arn = [p for p in principals if creds.certificate_id in p]
    assert len(cert_arn) == 1
    assert iot.describe_certificate(certificateId=creds.certificate_id)[
        "certificateDescription"]["status"] == "ACTIVE"
    policies = iot.list_attached_policies(target=cert_arn[0])["policies"]
    assert [p["policyName"] for p in policies] == ["fota-device"]
    doc = json.loads(iot.get_policy(policyName="fota-device")["policyDocument"])
    text = json.dumps(doc)
    assert "client/${iot:Connection.Thing.ThingName}" in text
    assert "topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*" in text
    assert "topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*" in text
    assert "topic/$aws/things/${iot:Connection.Thing.ThingName}/streams/*" in text
    assert "topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/streams/*" in text
    assert "*" not in [s["Resource"] for s in doc["Statement"]]
    # the key pair belongs together, and the folder holds DER for the device
    cert = x509.load_pem_x509_certificate(creds.certificate_pem)
    key = serialization.load_pem_private_key(creds.private_key_pem, None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    out = tmp_path / "device"
    config = write_device_folder(creds, out, tmp_path / "home")
    assert config == check_device_folder(out)
    assert config["thing"] == thing and config["port"] == 8883
    assert x509.load_der_x509_certificate((out / config["cert"]).read_bytes()) == cert
    der_key = serialization.load_der_private_key((out / config["key"]).read_bytes(), None)
    assert der_key.private_numbers() == key.private_numbers()
    assert (out / config["key"]).stat().st_mode & 0o077 == 0
    pem_copy = tmp_path / "home" / "things" / thing / "device.key.pem"
    assert pem_copy.read_bytes() == creds.private_key_pem
    # a second provisioning of the same thing adds a second certificate, same policy
    again = backend.provision(thing)
    assert again.certificate_id != creds.certificate_id
    assert len(iot.list_thing_principals(thingName=thing)["principals"]) == 2


def test_groups(backend):
    a, b = unique("dev"), unique("dev")
    for t in (a, b):
        backend.iot.create_thing(thingName=t)
    group = unique("grp")
    arn = backend.create_thing_group(group, [a])
    assert arn == backend.group_arn(group) and arn.endswith(f":thinggroup/{group}")
    assert backend.create_thing_group(group, [b]) == arn  # existing group: things added
    names = backend.iot.list_things_in_thing_group(thingGroupName=group)["things"]
    assert sorted(names) == sorted([a, b])
    with pytest.raises(NotFound, match="no thing 'no-such-thing'") as e:
        backend.create_thing_group(group, ["no-such-thing"])
    assert (e.value.kind, e.value.name, e.value.code) == ("thing", "no-such-thing",
                                                          "ResourceNotFoundException")
    with pytest.raises(NotFound, match="no group 'no-such-group'"):
        backend.group_arn("no-such-group")


def test_upload_creates_bucket_and_returns_s3_url(backend, tmp_path):
    f = tmp_path / "fw.bin"
    f.write_bytes(bytes(range(256)) * 8)
    url = backend.upload(f, "firmware/micropython/1.0.0/fw.bin")
    assert url == (f"https://s3.{REGION}.amazonaws.com/{backend.bucket}"
                   "/firmware/micropython/1.0.0/fw.bin")
    body = backend.s3.get_object(Bucket=backend.bucket,
                                 Key="firmware/micropython/1.0.0/fw.bin")["Body"].read()
    assert body == f.read_bytes()
    backend.upload(f, "again.bin")  # the bucket exists now


def test_create_job_with_presigned_rollout_abort_timeout(backend):
    thing = unique("dev")
    backend.iot.create_thing(thingName=thing)
    job_id = unique("job")
    doc = {"operation": "fota", "bc_idx": -1, "bc_crc": "0" * 32, "bc_size": 10,
           "bc_url": "${aws:iot:s3-presigned-url:https://s3.eu-west-1.amazonaws.com/b/k}",
           "version": "1.0.0"}
    job = backend.create_job(job_id, [backend.thing_arn(thing)], doc,
                             Rollout(maximum_per_minute=20, abort_failure_percent=25.0,
                                     abort_min_executed=4, step_timeout_minutes=15,
                                     presigned_expires_sec=900))
    assert job.job_id == job_id and job.document == doc
    raw = backend.iot.describe_job(jobId=job_id)["job"]
    assert raw["presignedUrlConfig"] == {"roleArn": ROLE_ARN, "expiresInSec": 900}
    assert raw["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 20}
    assert raw["abortConfig"] == {"criteriaList": [{
        "failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 25.0,
        "minNumberOfExecutedThings": 4}]}
    assert raw["timeoutConfig"] == {"inProgressTimeoutInMinutes": 15}
    assert raw["targetSelection"] == "SNAPSHOT"
    assert json.loads(backend.iot.get_job_document(jobId=job_id)["document"]) == doc


def test_job_without_role_is_refused_before_aws(moto, aws_env):
    b = AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=None)
    with pytest.raises(BackendError, match="--role-arn"):
        b.create_job(unique("job"), [], {"bc_url": "${aws:iot:s3-presigned-url:https://x/y}"},
                     Rollout())
    with pytest.raises(BackendError, match="--bucket"):
        AwsBackend(endpoint_url=moto.url).upload(Path(__file__), "k")


def test_executions_status_details_and_cancel(backend, moto):
    things = [unique("dev"), unique("dev")]
    arns = []
    for t in things:
        backend.iot.create_thing(thingName=t)
        arns.append(backend.thing_arn(t))
    job_id = unique("job")
    backend.create_job(job_id, arns, {"operation": "fota"}, Rollout())
    assert {e.thing_name: e.status for e in backend.list_executions(job_id)} == {
        things[0]: "QUEUED", things[1]: "QUEUED"}
    describes = []
    backend.iot.meta.events.register("before-call.iot.DescribeJobExecution",
                                     lambda **kw: describes.append(kw["params"]))
    # the device side (not in moto): thing 0 reports progress
    moto.device_update(job_id, things[0], "IN_PROGRESS", {"step": "download", "progress": "40%"})
    got = {e.thing_name: e for e in backend.list_executions(job_id)}
    assert got[things[0]].status == "IN_PROGRESS"
    assert got[things[0]].status_details == {"step": "download", "progress": "40%"}
    assert got[things[1]].status_details == {}
    assert len(describes) == 1  # queued executions have no details to fetch
    # unchanged executions are not described again; a details-only update is picked up
    backend.list_executions(job_id)
    assert len(describes) == 1
    time.sleep(0.01)
    moto.device_update(job_id, things[0], "IN_PROGRESS", {"step": "download", "progress": "90%"})
    got = {e.thing_name: e for e in backend.list_executions(job_id)}
    assert got[things[0]].status_details["progress"] == "90%"
    assert len(describes) == 2
    job = backend.cancel_job(job_id, force=True, reason="bad build")
    assert job.status == "CANCELED"
    raw = backend.iot.describe_job(jobId=job_id)["job"]
    assert raw["forceCanceled"] is True and raw["comment"] == "bad build"


def test_errors_are_one_line(backend):
    with pytest.raises(BackendError) as e:
        backend.describe_job("no-such-job")
    assert "\n" not in str(e.value) and "no-such-job" in str(e.value)
    with pytest.raises(NotFound, match="no thing 'no-such-thing' in eu-west-1"):
        backend.thing_arn("no-such-thing")


def test_bad_bucket_name_is_reported(moto, aws_env, tmp_path):
    b = AwsBackend(endpoint_url=moto.url, bucket="x", role_arn=ROLE_ARN)
    (tmp_path / "f").write_bytes(b"1")
    with pytest.raises(BackendError, match="InvalidBucketName"):
        b.upload(tmp_path / "f", "k")


def test_unreachable_endpoint_is_reported(aws_env):
    with socket.socket() as s:  # a free port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = AwsBackend(endpoint_url=f"http://127.0.0.1:{port}", bucket="fota-fw", role_arn=ROLE_ARN)
    with pytest.raises(BackendError, match="describe endpoint"):
        b.endpoint()


def test_region_and_credentials_from_environment(aws_env, moto, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert AwsBackend(endpoint_url=moto.url).region == "us-west-2"
    assert AwsBackend(region="ap-south-1", endpoint_url=moto.url).region == "ap-south-1"
    creds = boto3.session.Session().get_credentials()
    assert creds.access_key == "testing"


def test_create_stream_request(aws_env):
    """moto has no streams: botocore's Stubber checks the request against AWS IoT's own API
    model (names, types, required fields) and hands back AWS's answer."""
    from botocore.stub import Stubber

    b = AwsBackend(bucket="fw-bucket", role_arn=ROLE_ARN)
    with Stubber(b.iot) as stub:
        stub.add_response("create_stream", {"streamId": "fota-1-0-1", "streamVersion": 1},
                          {"streamId": "fota-1-0-1", "description": "micropython 1.0.1",
                           "roleArn": ROLE_ARN,
                           "files": [{"fileId": 0, "s3Location": {"bucket": "fw-bucket",
                                                                  "key": "firmware/a.bin"}}]})
        assert b.create_stream("fota-1-0-1", [(0, "firmware/a.bin")], "micropython 1.0.1") == 1
        stub.add_client_error("create_stream", "ResourceAlreadyExistsException", "stream exists")
        with pytest.raises(BackendError, match="create stream fota-1-0-1: ResourceAlreadyExistsException"):
            b.create_stream("fota-1-0-1", [(0, "firmware/a.bin")])


def test_provision_updates_an_older_device_policy(backend):
    """A fota-device policy left by an older version (no stream topics) gets a new default
    version with what devices need now; an up-to-date one is left alone."""
    from fotatools.aws import DEVICE_POLICY

    iot = backend.iot
    old = json.dumps({"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})
    try:
        iot.create_policy(policyName=DEVICE_POLICY, policyDocument=old)
    except iot.exceptions.ResourceAlreadyExistsException:
        iot.create_policy_version(policyName=DEVICE_POLICY, policyDocument=old, setAsDefault=True)
    assert "streams" not in iot.get_policy(policyName=DEVICE_POLICY)["policyDocument"]
    backend.provision(unique("dev"))
    doc = json.loads(iot.get_policy(policyName=DEVICE_POLICY)["policyDocument"])
    assert "streams/*" in json.dumps(doc)
    versions = len(iot.list_policy_versions(policyName=DEVICE_POLICY)["policyVersions"])
    backend.provision(unique("dev"))
    assert len(iot.list_policy_versions(policyName=DEVICE_POLICY)["policyVersions"]) == versions


# -- a rollout as AWS reports it ---------------------------------------------------------------
ACCOUNT_ARN = f"arn:aws:iot:{REGION}:123456789012"
GROUP_ARN = f"{ACCOUNT_ARN}:thinggroup/kitchens"
KITCHENS = ["kitchen-1", "kitchen-2", "kitchen-3"]


class AwsRollout:
    """AWS's answers about a job for the group `kitchens`, fed to the client through botocore's
    Stubber (which checks both the requests and the answers against AWS IoT's API model): moto
    makes every execution at once and never says how far a rollout has got."""

    def __init__(self, stub, job_id: str = "roll"):
        self.stub, self.job_id = stub, job_id
        self.t0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)

    def describe(self, status: str, processing: list[str], **extra) -> None:
        job = {"jobArn": f"{ACCOUNT_ARN}:job/{self.job_id}", "jobId": self.job_id,
               "targetSelection": "SNAPSHOT", "status": status, "targets": [GROUP_ARN],
               "createdAt": self.t0, "lastUpdatedAt": self.t0,
               "jobExecutionsRolloutConfig": {"maximumPerMinute": 1},
               "jobProcessDetails": {"processingTargets": processing,
                                     "numberOfQueuedThings": 1}, **extra}
        self.stub.add_response("describe_job", {"job": job}, {"jobId": self.job_id})
        self.stub.add_response("get_job_document", {"document": '{"version": "4.0.0"}'},
                               {"jobId": self.job_id})

    def executions(self, *states: tuple[str, str, bool], known: tuple[str, ...] = ()) -> None:
        """(thing, status, started) each; describe_job_execution for the ones not QUEUED whose
        details the backend does not have yet (`known` it has, unchanged)."""
        summaries = []
        for thing, state, started in states:
            s = {"status": state, "queuedAt": self.t0, "lastUpdatedAt": self.t0,
                 "executionNumber": 1, "retryAttempt": 0}
            if started:
                s["startedAt"] = self.t0
            summaries.append({"thingArn": f"{ACCOUNT_ARN}:thing/{thing}",
                              "jobExecutionSummary": s})
        self.stub.add_response("list_job_executions_for_job",
                               {"executionSummaries": summaries}, {"jobId": self.job_id})
        for thing, state, _ in states:
            if state != "QUEUED" and thing not in known:
                self.stub.add_response("describe_job_execution", {"execution": {
                    "jobId": self.job_id, "status": state, "thingArn": f"{ACCOUNT_ARN}:thing/{thing}",
                    "statusDetails": {"detailsMap": {"step": "x"}}, "versionNumber": 2,
                    "executionNumber": 1}}, {"jobId": self.job_id, "thingName": thing})

    def members(self, things: list[str]) -> None:
        self.stub.add_response("list_things_in_thing_group", {"things": things},
                               {"thingGroupName": "kitchens", "recursive": True})


def aws_status(backend, monkeypatch, capsys) -> tuple[int, dict]:
    from fotatools import cli

    monkeypatch.setattr(cli, "make_backend", lambda args: backend)
    code = cli.main(["status", "roll", "--json"])
    out = capsys.readouterr()
    assert not out.err, out.err
    return code, json.loads(out.out)


def test_rollout_counts_the_group_members_aws_has_not_reached(aws_env, monkeypatch, capsys):
    from botocore.stub import Stubber

    b = AwsBackend(bucket="fw-bucket", role_arn=ROLE_ARN)
    with Stubber(b.iot) as stub:
        aws = AwsRollout(stub)
        stub.add_response("describe_job", {"job": {"jobId": "roll"}}, {"jobId": "roll"})
        aws.describe("IN_PROGRESS", [GROUP_ARN])
        aws.executions(("kitchen-1", "QUEUED", False))
        aws.members(KITCHENS)
        code, st = aws_status(b, monkeypatch, capsys)
        assert code == 3 and st["counts"] == {"QUEUED": 1, "WAITING": 2}
        assert st["summary"] == "0/3 succeeded, 1 queued, 2 waiting (not yet queued at 1/min)"

        stub.add_response("describe_job", {"job": {"jobId": "roll"}}, {"jobId": "roll"})
        aws.describe("IN_PROGRESS", [GROUP_ARN])
        aws.executions(("kitchen-1", "SUCCEEDED", True), ("kitchen-2", "QUEUED", False))
        aws.members(KITCHENS)
        code, st = aws_status(b, monkeypatch, capsys)
        assert code == 3 and st["counts"] == {"SUCCEEDED": 1, "QUEUED": 1, "WAITING": 1}

        # the rollout is over (no processingTargets): a thing that joined the group since is
        # no target, and the group is not read again
        stub.add_response("describe_job", {"job": {"jobId": "roll"}}, {"jobId": "roll"})
        aws.describe("COMPLETED", [])
        aws.executions(*[(t, "SUCCEEDED", True) for t in KITCHENS], known=("kitchen-1",))
        code, st = aws_status(b, monkeypatch, capsys)
        assert code == 0 and st["counts"] == {"SUCCEEDED": 3}
        stub.assert_no_pending_responses()


def test_a_cancelled_rollout_spares_the_members_it_had_not_started(aws_env, monkeypatch, capsys):
    from botocore.stub import Stubber

    b = AwsBackend(bucket="fw-bucket", role_arn=ROLE_ARN)
    with Stubber(b.iot) as stub:
        aws = AwsRollout(stub)
        stub.add_response("describe_job", {"job": {"jobId": "roll"}}, {"jobId": "roll"})
        aws.describe("CANCELED", [], reasonCode="ABORTED", forceCanceled=False)
        aws.executions(("kitchen-1", "FAILED", True), ("kitchen-2", "CANCELED", False))
        aws.members(KITCHENS)
        code, st = aws_status(b, monkeypatch, capsys)
        stub.assert_no_pending_responses()
    assert code == 1 and st["reason_code"] == "ABORTED"
    assert {t["thing"]: (t["status"], t["execution_status"]) for t in st["things"]} == {
        "kitchen-1": ("FAILED", "FAILED"), "kitchen-2": ("SPARED", "CANCELED"),
        "kitchen-3": ("SPARED", None)}
