"""tools/fotatools/cloud/jobs.py after an execution ends and when a thing leaves a group:
- a job canceled without force leaves an IN_PROGRESS execution running; when it then FAILS
  or TIMES OUT, the job is no longer IN_PROGRESS and its jobExecutionsRetryConfig gives it no
  new attempt (AWS IoT's job states: a canceled job rolls out no new executions);
- a thing that leaves the group of a CONTINUOUS job before the rollout gave it an execution is
  no longer one of the job's targets (ListJobTargets), and the other things still are."""

from __future__ import annotations

import json

import pytest

from fotatools.cloud.jobs import group_arn, thing_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    yield from jobs_engine(tmp_path, clock=clock)


RETRY = {"jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 2}]}}


def executions(engine, thing):
    return [(s["jobExecutionSummary"]["executionNumber"], s["jobExecutionSummary"]["status"])
            for s in engine.list_job_executions_for_thing(thing)["executionSummaries"]]


def end(engine, clock, thing, status):
    """The execution's end: the device reports FAILED; TIMED_OUT comes from the in-progress timer."""
    if status == "FAILED":
        engine.handle(f"$aws/things/{thing}/jobs/j/update", json.dumps({"status": status}).encode())
    else:
        clock.now += 61
        engine.tick()


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT"])
def test_a_failure_after_the_job_was_canceled_is_not_retried(engine, clock, status):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a"), thing_arn("b")], "document": {},
                       "timeoutConfig": {"inProgressTimeoutInMinutes": 1}, **RETRY})
    engine.handle("$aws/things/b/jobs/start-next", b"{}")
    # while the job runs, a failure is retried: the criteria allow it
    end(engine, clock, "b", status)
    assert executions(engine, "b") == [(1, status), (2, "QUEUED")]
    engine.handle("$aws/things/a/jobs/start-next", b"{}")
    engine.cancel_job({"jobId": "j"})  # without force: a's execution keeps running
    assert engine.describe_job("j")["job"]["status"] != "IN_PROGRESS"
    assert executions(engine, "a") == [(1, "IN_PROGRESS")]
    end(engine, clock, "a", status)
    assert executions(engine, "a") == [(1, status)]  # no new attempt of a canceled job


def test_a_thing_leaving_a_continuous_jobs_group_before_its_turn_is_no_longer_a_target(engine, clock):
    engine.create_thing_group("g")
    engine.create_job({"jobId": "j", "targets": [group_arn("g")], "document": {},
                       "targetSelection": "CONTINUOUS",
                       "jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})
    for t in ("a", "b", "c"):
        engine.add_thing_to_group("g", t)
    assert engine.list_job_targets("j")["things"] == ["a", "b", "c"]
    assert executions(engine, "a") == [(1, "QUEUED")] and executions(engine, "b") == []  # b waits its turn
    engine.remove_thing_from_group("g", "b")
    assert engine.list_job_targets("j")["things"] == ["a", "c"]
    clock.now += 120  # later windows: c gets its execution, b none
    engine.tick()
    engine.tick()
    assert executions(engine, "b") == []
    assert executions(engine, "c") == [(1, "QUEUED")]
