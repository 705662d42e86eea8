"""tools/fotatools/cloud/jobs.py, on its own database:
- a job created without presignedUrlConfig gives devices URLs valid for 3600 s, AWS IoT's
  documented default (PresignedUrlConfig.expiresInSec: "Valid values are 60 - 3600, the default
  value is 3600 seconds");
- DescribeJobExecution's topic takes `$next` or a job id of 1-64 characters of [a-zA-Z0-9_-];
  any other id (the topic .../jobs/<id>/get) is an InvalidTopic, as for .../jobs/<id>/update,
  and an id just inside the bounds that names no job is ResourceNotFound;
- the control plane's DescribeJobExecution gives startedAt only once the execution has started
  (a QUEUED one has none, never a null)."""

from __future__ import annotations

import json

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine, thing_arn

from tests.cloud.engines import Clock, jobs_engine

URL = "https://bucket-1.s3.eu-west-1.amazonaws.com/fw/app.bin"


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, clock=Clock())


@pytest.fixture
def presigned(tmp_path):
    """An engine whose presign records (bucket, key, expires_in) for each URL it makes."""
    made: list[tuple[str, str, int]] = []

    def presign(bucket: str, key: str, expires: int) -> str:
        made.append((bucket, key, expires))
        return f"https://store/{bucket}/{key}?expires={expires}"

    db = Database(tmp_path / "cloud.db")
    e = JobsEngine(db, presign=presign, minute=60.0, clock=Clock())
    e.create_thing("a")
    e.made = made  # type: ignore[attr-defined]
    yield e
    db.close()


def answers(engine, topic: str, payload: bytes = b"{}") -> list[tuple[str, dict]]:
    sent: list[tuple[str, dict]] = []
    engine.publish = lambda t, p: sent.append((t, json.loads(p)))
    engine.handle(topic, payload)
    return sent


@pytest.mark.parametrize("config, expires", [
    ({}, 3600),
    ({"presignedUrlConfig": {"expiresInSec": 60}}, 60),
    ({"presignedUrlConfig": {}}, 3600),
])
def test_presigned_urls_last_3600_seconds_unless_the_job_says_otherwise(presigned, config, expires):
    presigned.create_job({"jobId": "j", "targets": [thing_arn("a")],
                          "document": {"url": f"${{aws:iot:s3-presigned-url:{URL}}}"}, **config})
    presigned.made.clear()
    (topic, body), = [m for m in answers(presigned, "$aws/things/a/jobs/start-next")
                      if m[0].endswith("/accepted")]
    assert presigned.made == [("bucket-1", "fw/app.bin", expires)]
    assert body["execution"]["jobDocument"] == {"url": f"https://store/bucket-1/fw/app.bin?expires={expires}"}


@pytest.mark.parametrize("job_id", ["j" * 65, "", "a.b", "a b", "ä", "$next2", "$NEXT"])
def test_describe_with_a_job_id_outside_its_pattern_is_an_invalid_topic(engine, job_id):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    topic = f"$aws/things/a/jobs/{job_id}/get"
    (reply, body), = answers(engine, topic)
    assert reply == topic + "/rejected" and body["code"] == "InvalidTopic"
    assert body["message"] == f"Topic {topic} does not map to any Jobs API"


@pytest.mark.parametrize("job_id", ["j" * 64, "a", "A-z_09"])
def test_describe_with_a_job_id_inside_its_pattern_looks_the_job_up(engine, job_id):
    topic = f"$aws/things/a/jobs/{job_id}/get"
    (reply, body), = answers(engine, topic)
    assert reply == topic + "/rejected" and body["code"] == "ResourceNotFound"
    engine.create_job({"jobId": job_id, "targets": [thing_arn("a")], "document": {"n": 1}})
    (reply, body), = answers(engine, topic)
    assert reply == topic + "/accepted"
    assert (body["execution"]["jobId"], body["execution"]["jobDocument"]) == (job_id, {"n": 1})


def test_describe_job_execution_gives_started_at_only_once_started(engine):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    queued = engine.describe_job_execution("j", "a")["execution"]
    assert queued["status"] == "QUEUED" and "startedAt" not in queued
    engine.clock.now += 5  # type: ignore[attr-defined]
    engine.handle("$aws/things/a/jobs/start-next", b"{}")
    started = engine.describe_job_execution("j", "a")["execution"]
    assert started["status"] == "IN_PROGRESS" and started["startedAt"] == queued["queuedAt"] + 5
