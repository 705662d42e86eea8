"""tools/fotatools/cloud/jobs.py: DescribeJob gives numberOfThingsAwaitingRollout (a local
extension, not in AWS's DescribeJob response) only while a rollout holds targets back; a job
whose targets are all released has no such field, as AWS's Job has none."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import thing_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, clock=Clock())


def test_the_awaiting_count_is_given_only_while_targets_wait(engine):
    targets = [thing_arn(t) for t in ("a", "b", "c")]
    engine.create_job({"jobId": "all", "targets": targets, "document": {}})
    assert "numberOfThingsAwaitingRollout" not in engine.describe_job("all")["job"]
    engine.create_job({"jobId": "slow", "targets": targets, "document": {},
                       "jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})
    assert engine.describe_job("slow")["job"]["numberOfThingsAwaitingRollout"] == 2
