"""tools/fotatools/cloud/jobs.py as the AWS IoT API reference gives it: CreateJob's response
carries the job's description; ListJobExecutionsForJob's status is one of QUEUED, IN_PROGRESS,
SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED (anything else is refused, not an
empty list); CreateJob's jobExecutionsRetryConfig is an object with a criteriaList."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ALL_STATES, ControlError, thing_arn

from tests.cloud.engines import jobs_engine


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, things=("a",))


def test_create_job_answers_with_the_description_it_was_given(engine):
    out = engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {},
                             "description": "firmware 2.1"})
    assert out == {"jobArn": out["jobArn"], "jobId": "j", "description": "firmware 2.1"}


def test_list_job_executions_takes_each_aws_status_and_refuses_any_other(engine):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    assert sorted(ALL_STATES) == sorted(["QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT",
                                         "REJECTED", "REMOVED", "CANCELED"])
    for status in ALL_STATES:
        got = engine.list_job_executions("j", status)["executionSummaries"]
        assert [s["jobExecutionSummary"]["status"] for s in got] == (["QUEUED"] if status == "QUEUED" else [])
    for status in ("queued", "SUCCESS", "COMPLETED", ""):
        with pytest.raises(ControlError) as e:
            engine.list_job_executions("j", status)
        assert e.value.kind == "InvalidRequestException" and "status must be one of" in e.value.message


@pytest.mark.parametrize("retry", [[{"failureType": "FAILED", "numberOfRetries": 1}], "ALL", 3])
def test_a_retry_config_that_is_not_an_object_is_refused_clearly(engine, retry):
    with pytest.raises(ControlError) as e:
        engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {},
                           "jobExecutionsRetryConfig": retry})
    assert e.value.kind == "InvalidRequestException"
    assert e.value.message == "jobExecutionsRetryConfig.criteriaList must be a non-empty list"
    assert engine.db.get_job("j") is None  # nothing was created
