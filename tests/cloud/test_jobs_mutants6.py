"""tools/fotatools/cloud/jobs.py as the AWS IoT API reference gives it: CancelJobExecution of an
execution that does not exist is a ResourceNotFoundException; the in-progress timer
(timeoutConfig.inProgressTimeoutInMinutes) starts when the execution is set to IN_PROGRESS and
"can't be updated": a later IN_PROGRESS update does not push it back; a rollout releases
queued targets only while its job is IN_PROGRESS."""

from __future__ import annotations

import json

import pytest

from fotatools.cloud.jobs import ControlError, thing_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    yield from jobs_engine(tmp_path, clock=clock)


@pytest.mark.parametrize("job_id, thing", [("j", "b"), ("nope", "a")])
@pytest.mark.parametrize("extra", [{}, {"force": True}, {"expectedVersion": 1}])
def test_canceling_an_execution_that_does_not_exist_is_resource_not_found(engine, job_id, thing, extra):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    with pytest.raises(ControlError) as e:
        engine.cancel_job_execution({"jobId": job_id, "thingName": thing, **extra})
    assert e.value.kind == "ResourceNotFoundException"
    assert e.value.message == f"Job execution {job_id} for thing {thing} does not exist"
    assert engine.describe_job_execution("j", "a")["execution"]["status"] == "QUEUED"  # untouched


def test_the_in_progress_timer_runs_from_the_start_and_a_later_update_does_not_reset_it(engine, clock):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {},
                       "timeoutConfig": {"inProgressTimeoutInMinutes": 1}})
    engine.handle("$aws/things/a/jobs/start-next", b"{}")
    clock.now += 50  # within the minute: a progress report
    engine.handle("$aws/things/a/jobs/j/update",
                  json.dumps({"status": "IN_PROGRESS", "statusDetails": {"step": "2"}}).encode())
    engine.tick()
    assert engine.describe_job_execution("j", "a")["execution"]["status"] == "IN_PROGRESS"
    clock.now += 11  # 61 s after the start, 11 s after the update
    engine.tick()
    assert engine.describe_job_execution("j", "a")["execution"]["status"] == "TIMED_OUT"


def test_release_touches_only_an_in_progress_job_with_a_rate(engine, clock):
    # Every caller of _release hands it an IN_PROGRESS job with a rate (create_job, a thing
    # joining a group, tick over active_jobs), so no request reaches its guard today: check the
    # guard directly. A canceled rollout keeps its window as it stopped (cancel dropped its
    # queued targets), a job without a rate and a job that is gone are left alone.
    engine.create_job({"jobId": "r", "targets": [thing_arn(t) for t in ("a", "b", "c")], "document": {},
                       "jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})
    engine.create_job({"jobId": "plain", "targets": [thing_arn("a")], "document": {}})
    engine.cancel_job({"jobId": "r"})
    clock.now += 120  # a new rollout window would have begun
    rows = {j: engine.db.get_job(j) for j in ("r", "plain")}
    for job_id in ("r", "plain", "gone"):
        engine._release(job_id, clock.now)
    assert {j: engine.db.get_job(j) for j in ("r", "plain")} == rows
    assert engine.db.get_job("gone") is None
