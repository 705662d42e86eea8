"""tools/fotatools/cloud/jobs.py as AWS IoT answers: CreateJob's response carries a description
only when the job has one (as DescribeJob does), and CancelJob on a COMPLETED job fails with
InvalidStateTransitionException, HTTP 409 (the API reference's status for it)."""

from __future__ import annotations

import json

import pytest

from fotatools.cloud.jobs import ControlError, thing_arn

from tests.cloud.engines import jobs_engine


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, things=("a",))


def test_create_job_gives_a_description_only_when_the_job_has_one(engine):
    out = engine.create_job({"jobId": "plain", "targets": [thing_arn("a")], "document": {}})
    assert out == {"jobArn": out["jobArn"], "jobId": "plain"}
    assert "description" not in engine.describe_job("plain")["job"]
    out = engine.create_job({"jobId": "named", "targets": [thing_arn("a")], "document": {},
                             "description": "v2 for the hall"})
    assert out["description"] == "v2 for the hall"
    assert engine.describe_job("named")["job"]["description"] == "v2 for the hall"


def test_canceling_a_completed_job_is_an_invalid_state_transition_409(engine):
    engine.create_job({"jobId": "done", "targets": [thing_arn("a")], "document": {}})
    engine.handle("$aws/things/a/jobs/start-next", b"{}")
    engine.handle("$aws/things/a/jobs/done/update", json.dumps({"status": "SUCCEEDED"}).encode())
    assert engine.describe_job("done")["job"]["status"] == "COMPLETED"
    with pytest.raises(ControlError) as e:
        engine.cancel_job({"jobId": "done"})
    assert e.value.kind == "InvalidStateTransitionException"
    assert e.value.message == "Job done is COMPLETED and cannot be canceled"
    assert e.value.status == 409
    assert engine.describe_job("done")["job"]["status"] == "COMPLETED"
