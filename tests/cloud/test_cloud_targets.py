"""The stand-in keeps the things each job targets, as the job saw them (ListJobTargets): what
`fota status` counts, the things a rollout has not queued yet and those a cancel spared among
them. AWS documents a snapshot job as sent to the targets given when it is created, and a
continuous one as sent to things that join a target group later too."""

from __future__ import annotations

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError, JobsEngine, group_arn, thing_arn

MINUTE = 60.0


class Clock:
    now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path):
    db = Database(tmp_path / "cloud.db")
    e = JobsEngine(db, presign=lambda bucket, key, expires: "https://x", minute=MINUTE,
                   clock=Clock())
    for t in ("a", "b", "c", "late"):
        e.create_thing(t)
    e.create_thing_group("g")
    for t in ("a", "b", "c"):
        e.add_thing_to_group("g", t)
    yield e
    db.close()


def create(engine, job_id: str, targets: list[str], **params) -> list[str]:
    engine.create_job({"jobId": job_id, "targets": targets, "document": {"operation": "x"},
                       **params})
    return engine.list_job_targets(job_id)["things"]


def executions(engine, job_id: str) -> dict[str, str]:
    return {e["thingArn"].rsplit("/", 1)[1]: e["jobExecutionSummary"]["status"]
            for e in engine.list_job_executions(job_id)["executionSummaries"]}


def test_a_rate_limited_job_lists_every_target_at_once(engine):
    assert create(engine, "r", [group_arn("g")],
                  jobExecutionsRolloutConfig={"maximumPerMinute": 1}) == ["a", "b", "c"]
    assert executions(engine, "r") == {"a": "QUEUED"}


def test_a_snapshot_job_keeps_the_group_it_was_created_with(engine):
    create(engine, "s", [group_arn("g"), thing_arn("late")],
           jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    engine.remove_thing_from_group("g", "c")
    engine.create_thing("later")
    engine.add_thing_to_group("g", "later")
    assert engine.list_job_targets("s")["things"] == ["a", "b", "c", "late"]


def test_a_continuous_job_follows_its_group(engine):
    create(engine, "c", [group_arn("g")], targetSelection="CONTINUOUS",
           jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    engine.add_thing_to_group("g", "late")
    assert engine.list_job_targets("c")["things"] == ["a", "b", "c", "late"]
    # c leaves before the rollout reached it: no longer a target; a leaves with its execution
    # QUEUED: that execution is REMOVED, and a stays a target to count
    engine.remove_thing_from_group("g", "c")
    engine.remove_thing_from_group("g", "a")
    assert engine.list_job_targets("c")["things"] == ["a", "b", "late"]
    assert executions(engine, "c") == {"a": "REMOVED"}


def test_a_cancel_leaves_the_targets_it_spared(engine):
    create(engine, "x", [group_arn("g")], jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    engine.cancel_job({"jobId": "x"})
    assert engine.list_job_targets("x")["things"] == ["a", "b", "c"]
    assert executions(engine, "x") == {"a": "CANCELED"}
    engine.clock.now += 2 * MINUTE
    engine.tick()
    assert executions(engine, "x") == {"a": "CANCELED"}


def test_a_deleted_job_has_no_targets(engine):
    create(engine, "d", [group_arn("g")])
    engine.delete_job({"jobId": "d"})
    with pytest.raises(ControlError) as e:
        engine.list_job_targets("d")
    assert e.value.kind == "ResourceNotFoundException"
    assert engine.db.job_targets("d") == []


def test_a_job_from_before_targets_were_kept(engine):
    """Its executions and the things still awaiting the rollout are its targets."""
    create(engine, "old", [group_arn("g")], jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    engine.db._run("DELETE FROM job_targets WHERE job_id = 'old'")
    assert engine.list_job_targets("old")["things"] == ["a", "b", "c"]


def test_thing_groups_are_described_and_listed(engine):
    assert engine.describe_thing_group("g") == {"thingGroupName": "g",
                                                "thingGroupArn": group_arn("g")}
    with pytest.raises(ControlError) as e:
        engine.describe_thing_group("h")
    assert e.value.kind == "ResourceNotFoundException"
    engine.create_thing_group("f")
    assert [g["groupName"] for g in engine.list_thing_groups()["thingGroups"]] == ["f", "g"]
