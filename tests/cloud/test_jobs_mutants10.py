"""tools/fotatools/cloud/jobs.py, on its own database:
- CancelJob without force cancels the QUEUED executions and leaves the IN_PROGRESS ones running;
  none of them is forceCanceled (AWS IoT's JobExecution.forceCanceled: "true if the job
  execution was canceled with the optional force parameter set to true"); a later forced
  CancelJob cancels the running one, and that one is forceCanceled, as is the job;
- the stand-in publishes the answer to a device's request before the events the request caused
  (an update to SUCCEEDED: update/accepted, then notify, then notify-next)."""

from __future__ import annotations

import json

import pytest

from fotatools.cloud.jobs import thing_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, clock=Clock())


def execution(engine, job_id, thing):
    return engine.describe_job_execution(job_id, thing)["execution"]


def test_a_cancel_without_force_force_cancels_no_execution(engine):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a"), thing_arn("b")], "document": {}})
    engine.handle("$aws/things/a/jobs/start-next", b"{}")
    engine.cancel_job({"jobId": "j"})
    queued, running = execution(engine, "j", "b"), execution(engine, "j", "a")
    assert (queued["status"], queued["forceCanceled"]) == ("CANCELED", False)
    assert (running["status"], running["forceCanceled"]) == ("IN_PROGRESS", False)
    assert engine.describe_job("j")["job"]["forceCanceled"] is False
    engine.cancel_job({"jobId": "j", "force": True})
    running = execution(engine, "j", "a")
    assert (running["status"], running["forceCanceled"]) == ("CANCELED", True)
    assert engine.describe_job("j")["job"]["forceCanceled"] is True
    assert execution(engine, "j", "b")["forceCanceled"] is False  # canceled before, without force


def test_the_answer_to_a_request_comes_before_the_events_it_causes(engine):
    sent: list[str] = []
    engine.publish = lambda topic, payload: sent.append(topic)
    for job_id in ("j1", "j2"):
        engine.create_job({"jobId": job_id, "targets": [thing_arn("a")], "document": {}})
    engine.handle("$aws/things/a/jobs/start-next", b"{}")
    sent.clear()
    engine.handle("$aws/things/a/jobs/j1/update", json.dumps({"status": "SUCCEEDED"}).encode())
    assert sent == ["$aws/things/a/jobs/j1/update/accepted", "$aws/things/a/jobs/notify",
                    "$aws/things/a/jobs/notify-next"]
