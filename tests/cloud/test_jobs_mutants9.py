"""The stand-in's Jobs engine (tools/fotatools/cloud/jobs.py), on its own database:
- CancelJob's comment is a string of at most 2028 characters (AWS IoT's CancelJob API
  reference); any other value is refused as an InvalidRequestException and cancels nothing;
- a QUEUED execution of a CONTINUOUS job whose thing leaves the job's group is REMOVED, and
  like every change of an execution its versionNumber goes up by one."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError, group_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    yield from jobs_engine(tmp_path, clock=clock)


@pytest.mark.parametrize("comment", [["a list"], {"a": "dict"}, 5, True])
def test_a_cancel_comment_that_is_not_a_string_is_refused(engine, comment):
    engine.create_job({"jobId": "j", "document": {}, "targets": ["arn:aws:iot:local:000000000000:thing/a"]})
    with pytest.raises(ControlError, match="comment") as err:
        engine.cancel_job({"jobId": "j", "comment": comment})
    assert err.value.kind == "InvalidRequestException"
    assert engine.describe_job("j")["job"]["status"] == "IN_PROGRESS"
    engine.cancel_job({"jobId": "j", "comment": "c" * 2028})  # a string just inside the bound
    assert engine.describe_job("j")["job"]["status"] == "CANCELED"


def test_a_removed_continuous_execution_has_the_next_version(engine):
    engine.create_thing_group("g")
    engine.create_job({"jobId": "j", "targets": [group_arn("g")], "document": {},
                       "targetSelection": "CONTINUOUS"})
    engine.add_thing_to_group("g", "a")
    before = engine.describe_job_execution("j", "a")["execution"]
    assert before["status"] == "QUEUED"
    engine.remove_thing_from_group("g", "a")
    after = engine.describe_job_execution("j", "a")["execution"]
    assert after["status"] == "REMOVED"
    assert after["versionNumber"] == before["versionNumber"] + 1
