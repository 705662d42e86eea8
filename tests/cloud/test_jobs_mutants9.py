"""The stand-in's Jobs engine (tools/fotatools/cloud/jobs.py), on its own database:
- CancelJob's comment is a string of at most 2028 characters (AWS IoT's CancelJob API
  reference); any other value is refused as an InvalidRequestException and cancels nothing;
- a QUEUED execution of a CONTINUOUS job whose thing leaves the job's group is REMOVED, and
  like every change of an execution its versionNumber goes up by one."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError, group_arn, thing_arn

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


@pytest.mark.parametrize("comment,ok", [("", False), ("c", True), ("a\nb", False), ("a\u200bb", False),
                                        ("c" * 2029, False), ("a b é", True)])
def test_a_cancel_comment_is_text_without_control_characters(engine, comment, ok):
    """AWS's CancelJob: comment at most 2028 characters, pattern [^\\p{C}]+."""
    engine.create_thing("t")
    engine.create_job({"jobId": "k", "targets": [thing_arn("t")], "document": {"operation": "x"}})
    if ok:
        engine.cancel_job({"jobId": "k", "comment": comment})
        assert engine.describe_job("k")["job"]["comment"] == comment
    else:
        with pytest.raises(ControlError) as err:
            engine.cancel_job({"jobId": "k", "comment": comment})
        assert err.value.message == "comment must be 1 to 2028 characters, none of them a control character"
        assert engine.describe_job("k")["job"]["status"] == "IN_PROGRESS"
