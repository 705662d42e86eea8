"""The stand-in's Jobs engine (tools/fotatools/cloud/jobs.py), in process: what an exponential
rollout counts toward its rate increase, CancelJobExecution's expectedVersion, and the service's
routing of a message by its topic."""

from __future__ import annotations

import json
import queue
from types import SimpleNamespace
from typing import Any

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError, JobsEngine, JobsService, thing_arn

MINUTE = 60.0


class Clock:
    now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path):
    db = Database(tmp_path / "cloud.db")
    e = JobsEngine(db, presign=lambda bucket, key, expires: "https://x", minute=MINUTE, clock=Clock())
    for t in ("a", "b", "c", "d", "e"):
        e.create_thing(t)
    yield e
    db.close()


def released(engine: JobsEngine, job_id: str) -> list[str]:
    return sorted(x["thingArn"].rsplit("/", 1)[1]
                  for x in engine.list_job_executions(job_id)["executionSummaries"])


def finish(engine: JobsEngine, thing: str, job_id: str, status: str) -> None:
    engine.handle(f"$aws/things/{thing}/jobs/start-next", b"{}")
    engine.handle(f"$aws/things/{thing}/jobs/{job_id}/update", json.dumps({"status": status}).encode())
    assert engine.describe_job_execution(job_id, thing)["execution"]["status"] == status


def test_a_message_is_routed_by_its_topic_whatever_its_levels():
    work: queue.Queue[Any] = queue.Queue()
    stream_work: queue.Queue[Any] = queue.Queue()
    service = SimpleNamespace(_work=work, _stream_work=stream_work)
    for topic, to_streams in [("$aws/things/x", False), ("$aws/things/x/streams", True),
                              ("$aws/things/x/streams/s/get/json", True), ("$aws/things/x/jobs/get", False)]:
        JobsService._on_message(service, None, None, SimpleNamespace(topic=topic, payload=b"{}"))  # type: ignore[arg-type]
        assert (stream_work if to_streams else work).get_nowait() == (topic, b"{}")
        assert work.empty() and stream_work.empty()


def test_only_succeeded_executions_count_toward_numberOfSucceededThings(engine):
    # AWS: the rate grows by incrementFactor once numberOfSucceededThings executions have
    # SUCCEEDED since the last increase; a FAILED one is not a success.
    engine.create_job({"jobId": "r", "targets": [thing_arn(t) for t in ("a", "b", "c", "d", "e")],
                       "document": {}, "jobExecutionsRolloutConfig": {"exponentialRate": {
                           "baseRatePerMinute": 1, "incrementFactor": 2,
                           "rateIncreaseCriteria": {"numberOfSucceededThings": 1}}}})
    assert released(engine, "r") == ["a"]
    finish(engine, "a", "r", "FAILED")
    engine.clock.now += MINUTE
    engine.tick()
    assert released(engine, "r") == ["a", "b"]  # still one a minute
    finish(engine, "b", "r", "SUCCEEDED")
    engine.clock.now += MINUTE
    engine.tick()
    assert released(engine, "r") == ["a", "b", "c", "d"]  # two a minute from now on


def test_cancel_job_execution_refuses_an_expected_version_that_is_not_an_integer(engine):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    for bad in ("1", True, 1.0, [1]):
        with pytest.raises(ControlError, match="expectedVersion must be an integer") as e:
            engine.cancel_job_execution({"jobId": "j", "thingName": "a", "expectedVersion": bad})
        assert e.value.kind == "InvalidRequestException"
    assert engine.describe_job_execution("j", "a")["execution"]["status"] == "QUEUED"
    with pytest.raises(ControlError) as e:
        engine.cancel_job_execution({"jobId": "j", "thingName": "a", "expectedVersion": 2})
    assert e.value.kind == "VersionConflictException"
    engine.cancel_job_execution({"jobId": "j", "thingName": "a", "expectedVersion": 1})
    assert engine.describe_job_execution("j", "a")["execution"]["status"] == "CANCELED"
