"""The rollout configuration and the canary on AWS: the create_job requests checked against AWS
IoT's API model by botocore's Stubber (moto takes any fields and carries out none of them), and
a canary's two jobs end to end through `fota publish`/`status` on moto."""

from __future__ import annotations

import json

import pytest

from fotatools import cli
from fotatools.aws import AwsBackend
from fotatools.backend import Rollout
from tests.cli.conftest import REGION, ROLE_ARN, unique
from tests.cli.images import app_image

ACCOUNT_ARN = f"arn:aws:iot:{REGION}:123456789012"


@pytest.fixture
def backend(moto, aws_env) -> AwsBackend:
    return AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN)


@pytest.mark.parametrize("rollout,config", [
    (Rollout(base_per_minute=5, increment_factor=1.5, increase_after=10,
             increase_on="notified", maximum_per_minute=200),
     {"exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 1.5,
                          "rateIncreaseCriteria": {"numberOfNotifiedThings": 10}},
      "maximumPerMinute": 200}),
    (Rollout(base_per_minute=1, increment_factor=5.0, increase_after=1),
     {"exponentialRate": {"baseRatePerMinute": 1, "incrementFactor": 5.0,
                          "rateIncreaseCriteria": {"numberOfSucceededThings": 1}}}),
])
def test_create_job_sends_the_exponential_rate_and_timeout(aws_env, rollout, config):
    from botocore.stub import Stubber

    rollout.step_timeout_minutes = 10080
    b = AwsBackend(bucket="fw-bucket", role_arn=ROLE_ARN)
    doc = {"operation": "fota", "version": "2.0.0"}
    with Stubber(b.iot) as stub:  # the request is checked against the API model
        stub.add_response("create_job", {"jobArn": f"{ACCOUNT_ARN}:job/j", "jobId": "j"}, {
            "jobId": "j", "targets": [f"{ACCOUNT_ARN}:thing/t"],
            "document": json.dumps(doc, separators=(",", ":")), "targetSelection": "SNAPSHOT",
            "description": "FOTA 2.0.0", "jobExecutionsRolloutConfig": config,
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10080}})
        stub.add_response("describe_job", {"job": {"jobId": "j", "status": "IN_PROGRESS",
                                                   "jobExecutionsRolloutConfig": config}},
                          {"jobId": "j"})
        stub.add_response("get_job_document", {"document": json.dumps(doc)}, {"jobId": "j"})
        job = b.create_job("j", [f"{ACCOUNT_ARN}:thing/t"], doc, rollout)
        stub.assert_no_pending_responses()
    assert job.rollout == config


def test_an_ota_update_takes_the_exponential_rate(aws_env):
    """CreateOTAUpdate's awsJobExecutionsRolloutConfig has the same fields."""
    r = Rollout(base_per_minute=2, increment_factor=2.0, increase_after=3)
    assert r.rollout_config() == {"exponentialRate": {
        "baseRatePerMinute": 2, "incrementFactor": 2.0,
        "rateIncreaseCriteria": {"numberOfSucceededThings": 3}}}
    import botocore.session
    model = botocore.session.get_session().get_service_model("iot")
    shape = model.operation_model("CreateOTAUpdate").input_shape.members[
        "awsJobExecutionsRolloutConfig"]
    expo = shape.members["exponentialRate"]
    assert set(expo.members) == {"baseRatePerMinute", "incrementFactor", "rateIncreaseCriteria"}
    assert set(expo.members["rateIncreaseCriteria"].members) == {
        "numberOfNotifiedThings", "numberOfSucceededThings"}


def test_a_canary_on_aws(backend, moto, monkeypatch, capsys, tmp_path):
    things = [unique("k") for _ in range(3)]
    group = unique("kitchens")
    for t in things:
        backend.iot.create_thing(thingName=t)
    backend.create_thing_group(group, things)
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("3.0.0"))
    monkeypatch.setattr(cli, "make_backend", lambda args: backend)

    def fota(*args) -> tuple[int, dict]:
        code = cli.main([*map(str, args), "--json"])
        out = capsys.readouterr()
        assert not out.err, out.err
        return code, json.loads(out.out)

    job = unique("canary")
    code, out = fota("publish", fw, "--group", group, "--canary", "1", "--rate", "5/min",
                     "--timeout", "30", "--job-id", job)
    assert code == 0
    first = out["canary"]["things"]
    assert len(first) == 1 and sorted(first + out["canary"]["rest_things"]) == sorted(things)
    model = moto.iot_model()
    canary = model.jobs[job]
    assert canary.targets == [backend.thing_arn(first[0])]
    assert canary.timeout_config == {"inProgressTimeoutInMinutes": 30}
    assert not canary.job_executions_rollout_config
    plan = json.loads(canary.description.split(": ", 1)[1])
    assert plan["rest_job"] == f"{job}-rest" and plan["targets"] == [backend.group_arn(group)]

    code, st = fota("status", job)
    assert code == 3 and st["counts"] == {"QUEUED": 1, "WAITING": 2}
    assert f"{job}-rest" not in model.jobs

    moto.device_update(job, first[0], "SUCCEEDED", {"version": "3.0.0"})
    code, st = fota("status", job)
    assert code == 3 and st["promoted"]
    rest = model.jobs[f"{job}-rest"]
    assert sorted(rest.targets) == sorted(backend.thing_arn(t) for t in out["canary"]["rest_things"])
    assert rest.job_executions_rollout_config == {"maximumPerMinute": 5}
    assert rest.description == f"fota rest of canary {job}"
    assert st["counts"] == {"SUCCEEDED": 1, "QUEUED": 2}

    for t in out["canary"]["rest_things"]:
        moto.device_update(f"{job}-rest", t, "SUCCEEDED", {"version": "3.0.0"})
    code, st = fota("status", job)
    assert code == 0 and st["counts"] == {"SUCCEEDED": 3} and not st["promoted"]
