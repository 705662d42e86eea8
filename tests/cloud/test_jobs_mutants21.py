"""tools/fotatools/cloud/jobs.py: an incrementFactor with two digits after the decimal, bad
statusDetails on CancelJobExecution, and ListJobExecutionsForJob of a job that does not exist."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError, thing_arn

from .engines import jobs_engine

FACTOR = "exponentialRate.incrementFactor must be 1.1..5 with at most one digit after the decimal"


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, things=("a",))


def rollout(factor: float) -> dict:
    return {"jobExecutionsRolloutConfig": {"exponentialRate": {
        "baseRatePerMinute": 10, "incrementFactor": factor,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}}}


@pytest.mark.parametrize("factor", [1.55, 2.25, 4.99])
def test_an_increment_factor_with_two_digits_after_the_decimal_is_refused(engine, factor):
    # AWS API reference, ExponentialRolloutRate: "supports up to one digit after the decimal
    # (for example, 1.5, but not 1.55)"; these are inside 1.1..5, so only that rule refuses them
    with pytest.raises(ControlError) as e:
        engine._validate_job_config(rollout(factor))
    assert (e.value.kind, e.value.message) == ("InvalidRequestException", FACTOR)


@pytest.mark.parametrize("factor", [1.5, 2.2, 4.9])
def test_an_increment_factor_with_one_digit_after_the_decimal_is_taken(engine, factor):
    assert engine._validate_job_config(rollout(factor)) == rollout(factor)


@pytest.mark.parametrize("details, why", [
    ({"step": 3}, "statusDetails value of 'step' must be a string"),
    ("three", "statusDetails must be an object of string values"),
    ({"a b": "x"}, "statusDetails key 'a b' must be 1-128 characters of [a-zA-Z0-9:_-]"),
])
def test_cancel_job_execution_with_bad_status_details_is_refused_and_cancels_nothing(engine, details, why):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    with pytest.raises(ControlError) as e:
        engine.cancel_job_execution({"jobId": "j", "thingName": "a", "statusDetails": details})
    assert (e.value.kind, e.value.message) == ("InvalidRequestException", why)
    execution = engine.describe_job_execution("j", "a")["execution"]
    assert execution["status"] == "QUEUED"
    assert execution["statusDetails"]["detailsMap"] == {}


def test_list_job_executions_of_a_job_that_does_not_exist_is_resource_not_found(engine):
    with pytest.raises(ControlError) as e:
        engine.list_job_executions("nope")
    assert (e.value.kind, e.value.message) == ("ResourceNotFoundException", "Job nope does not exist")
    assert ControlError.STATUS[e.value.kind] == 404
