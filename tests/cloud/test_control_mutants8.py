"""tools/fotatools/cloud/control.py: ListJobExecutionsForThing takes the thing from the request's
thingName (as AWS's API does) and refuses a request without one."""

from __future__ import annotations

import pytest

from fotatools.cloud.control import ControlError
from fotatools.cloud.jobs import thing_arn

from tests.cloud.engines import control_api


@pytest.fixture()
def api(tmp_path):
    for a in control_api(tmp_path, ("a", "b")):
        a.engine.create_job({"jobId": "ja", "targets": [thing_arn("a")], "document": {}})
        a.engine.create_job({"jobId": "jb", "targets": [thing_arn("b")], "document": {}})
        yield a


def test_list_job_executions_for_thing_lists_the_named_things_executions(api):
    for thing, job in (("a", "ja"), ("b", "jb")):
        body = api.call("ListJobExecutionsForThing", {"thingName": thing})
        assert [(s["jobId"], s["jobExecutionSummary"]["status"]) for s in body["executionSummaries"]] == \
            [(job, "QUEUED")]


def test_list_job_executions_for_thing_without_a_thing_name_is_refused(api):
    with pytest.raises(ControlError) as e:
        api.call("ListJobExecutionsForThing", {})
    assert e.value.kind == "InvalidRequestException"
    assert e.value.message == "thingName is required (a string)"
