"""`fota things`, `history` and `jobs` on AWS, against moto: shadows through the IoT data plane
(GetThingShadow; a device's report is played with UpdateThingShadow, which is what its MQTT
update does), executions and jobs through the Jobs API (moto has no Jobs device side: the
device's updates are set in moto's model, see conftest.py)."""

from __future__ import annotations

import json

import boto3
import pytest

from fotatools import cli, fleet
from fotatools.aws import AwsBackend
from fotatools.backend import Rollout
from tests.cli.conftest import REGION, ROLE_ARN, unique


@pytest.fixture
def backend(moto, aws_env) -> AwsBackend:
    return AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN)


@pytest.fixture
def data(moto, aws_env):
    return boto3.client("iot-data", endpoint_url=moto.url, region_name=REGION)


def report(data, thing: str, reported: dict) -> None:
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": {"reported": reported}}))


def fota(capsys, moto, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--backend", "aws", "--endpoint-url", moto.url, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_things_from_their_shadows_by_group_and_version(backend, data, moto, capsys):
    group = unique("kitchens")
    a, b, c = (unique("k") for _ in range(3))
    for t in (a, b, c):
        backend.iot.create_thing(thingName=t)
    backend.create_thing_group(group, [a, b])
    report(data, a, {"firmware": "1.0.1", "app": "none",
                     "job": {"id": "j1", "status": "SUCCEEDED", "reason": None, "step": "confirm"}})
    report(data, b, {"firmware": "1.0.0", "app": "2.0.0", "files": {"file_1": "3.1.0"},
                     "job": {"id": "j1", "status": "FAILED", "reason": "HTTP 403", "step": "download"}})
    states = {t.thing: t for t in fleet.things(backend, group=group)}
    assert sorted(states) == sorted([a, b])
    assert (states[a].firmware, states[a].job_status, states[a].reason) == ("1.0.1", "SUCCEEDED", None)
    assert states[a].shadow_version == 1 and states[a].reported_at is not None
    assert (states[b].files, states[b].reason, states[b].step) == ({"file_1": "3.1.0"}, "HTTP 403", "download")
    everyone = {t.thing: t for t in fleet.things(backend)}
    assert not everyone[c].reported and everyone[c].firmware is None

    code, out, err = fota(capsys, moto, "things", "--group", group, "--version", "1.0.1", "--json")
    assert code == 0, err
    assert [(t["thing"], t["firmware"], t["application"]) for t in json.loads(out)] == [(a, "1.0.1", "none")]
    code, out, err = fota(capsys, moto, "things", "--group", unique("nope"))
    assert code == 2 and "no group" in err and out == ""


def test_history_and_jobs_through_the_jobs_api(backend, moto, capsys):
    thing = unique("dev")
    backend.iot.create_thing(thingName=thing)
    arn = backend.thing_arn(thing)
    first, second = unique("job"), unique("job")
    for job_id in (first, second):
        backend.create_job(job_id, [arn], {"operation": "fota", "version": "1.0.1"}, Rollout())
    moto.device_update(first, thing, "FAILED", {"step": "download", "reason": "HTTP 403"})
    moto.device_update(second, thing, "SUCCEEDED", {"step": "confirm", "version": "1.0.1"})

    h = fleet.history(backend, thing)
    assert [(e.job_id, e.status) for e in h] == [(second, "SUCCEEDED"), (first, "FAILED")]
    assert (h[1].step, h[1].reason) == ("download", "HTTP 403") and h[0].details["version"] == "1.0.1"
    code, out, err = fota(capsys, moto, "history", thing, "--json")
    assert code == 0, err
    assert [e["job_id"] for e in json.loads(out)] == [second, first]
    code, out, err = fota(capsys, moto, "history", unique("nobody"))
    assert code == 2 and "no thing" in err

    # (moto keeps a job's jobProcessDetails as they were at its creation: the counts are
    # checked against AWS's own model below)
    code, out, err = fota(capsys, moto, "jobs", "--json")
    assert code == 0, err
    listed = [j["job_id"] for j in json.loads(out)]
    assert listed.index(second) < listed.index(first)  # newest first


def test_jobs_counts_from_describe_job_on_awss_model(aws_env):
    """ListJobs, then DescribeJob for each job's counts, checked by botocore's Stubber against
    AWS's API model (moto does not move a job's counts)."""
    import datetime as dt

    from botocore.stub import Stubber

    backend = AwsBackend(endpoint_url="http://127.0.0.1:9", region=REGION)
    t0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    with Stubber(backend.iot) as stub:
        stub.add_response("list_jobs", {"jobs": [{"jobId": "old", "status": "COMPLETED"},
                                                 {"jobId": "new", "status": "IN_PROGRESS"}]})
        stub.add_response("describe_job", {"job": {
            "jobId": "old", "status": "COMPLETED", "targets": ["arn:aws:iot:eu-west-1:1:thing/a"],
            "createdAt": t0, "jobProcessDetails": {"numberOfSucceededThings": 2, "numberOfFailedThings": 1,
                                                   "numberOfQueuedThings": 0}}}, {"jobId": "old"})
        stub.add_response("describe_job", {"job": {
            "jobId": "new", "status": "CANCELED", "reasonCode": "ABORTED", "createdAt": t0 + dt.timedelta(hours=1),
            "targets": ["arn:aws:iot:eu-west-1:1:thinggroup/g"],
            "jobProcessDetails": {"numberOfInProgressThings": 1, "numberOfCanceledThings": 2}}}, {"jobId": "new"})
        js = fleet.jobs(backend)
        stub.assert_no_pending_responses()
    assert [j.job_id for j in js] == ["new", "old"]
    assert js[1].counts == {"SUCCEEDED": 2, "FAILED": 1} and js[1].total == 3
    assert js[0].counts == {"IN_PROGRESS": 1, "CANCELED": 2} and js[0].reason_code == "ABORTED"
    assert js[0].created_at == t0.timestamp() + 3600


def test_thing_executions_describe_each_started_one_on_awss_model(aws_env):
    """ListJobExecutionsForThing, then DescribeJobExecution (its statusDetails) for each one a
    device has reported on, on AWS's model."""
    import datetime as dt

    from botocore.stub import Stubber

    backend = AwsBackend(endpoint_url="http://127.0.0.1:9", region=REGION)
    t0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    with Stubber(backend.iot) as stub:
        stub.add_response("describe_thing", {"thingName": "d1", "thingArn": "arn:aws:iot:eu-west-1:1:thing/d1"},
                          {"thingName": "d1"})
        stub.add_response("list_job_executions_for_thing", {"executionSummaries": [
            {"jobId": "a", "jobExecutionSummary": {"status": "FAILED", "queuedAt": t0, "startedAt": t0,
                                                   "lastUpdatedAt": t0 + dt.timedelta(minutes=5),
                                                   "executionNumber": 2}},
            {"jobId": "b", "jobExecutionSummary": {"status": "QUEUED", "queuedAt": t0 + dt.timedelta(hours=1),
                                                   "lastUpdatedAt": t0 + dt.timedelta(hours=1),
                                                   "executionNumber": 1}}]}, {"thingName": "d1"})
        stub.add_response("describe_job_execution", {"execution": {
            "jobId": "a", "status": "FAILED", "versionNumber": 4,
            "statusDetails": {"detailsMap": {"step": "verify", "reason": "bad signature"}}}},
            {"jobId": "a", "thingName": "d1", "executionNumber": 2})
        h = fleet.history(backend, "d1")
        stub.assert_no_pending_responses()
    assert [(e.job_id, e.status, e.reason) for e in h] == [("b", "QUEUED", None), ("a", "FAILED", "bad signature")]
    assert h[1].step == "verify" and h[1].execution_number == 2


def test_the_device_policy_lets_a_board_use_its_own_shadow(backend):
    """What lib/fota/shadow.py publishes on AWS: the policy `fota provision` attaches allows it
    (and an older policy is brought up to date by provision: test_aws.py)."""
    backend.provision(unique("dev"))
    doc = json.loads(backend.iot.get_policy(policyName="fota-device")["policyDocument"])
    by_action = {json.dumps(s["Action"]): s["Resource"] for s in doc["Statement"]}
    thing = "${iot:Connection.Thing.ThingName}"
    assert any(r.endswith(f":topic/$aws/things/{thing}/shadow/*")
               for r in by_action[json.dumps(["iot:Publish", "iot:Receive"])])
    assert any(r.endswith(f":topicfilter/$aws/things/{thing}/shadow/*") for r in by_action['"iot:Subscribe"'])
    assert not [r for rs in by_action.values() for r in ([rs] if isinstance(rs, str) else rs)
                if "shadow" in r and thing not in r]  # never another thing's shadow


def test_the_data_plane_endpoint_from_the_environment(aws_env, monkeypatch):
    # AWS_ENDPOINT_URL_IOT_DATA_PLANE names the data plane (botocore's service-specific endpoint
    # setting): used as it is, with no DescribeEndpoint call; without it, the account's endpoint.
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE", "https://shadows.example.test:8443")
    b = AwsBackend(region=REGION, bucket=unique("fota-fw"), role_arn=ROLE_ARN)
    with Stubber(b.iot):  # no answers queued: a DescribeEndpoint call would raise
        assert b.data.meta.endpoint_url == "https://shadows.example.test:8443"
    monkeypatch.delenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
    b = AwsBackend(region=REGION, bucket=unique("fota-fw"), role_arn=ROLE_ARN)
    with Stubber(b.iot) as st:
        st.add_response("describe_endpoint", {"endpointAddress": "abc123-ats.iot.%s.amazonaws.com" % REGION},
                        {"endpointType": "iot:Data-ATS"})
        assert b.data.meta.endpoint_url == "https://abc123-ats.iot.%s.amazonaws.com" % REGION
        st.assert_no_pending_responses()
