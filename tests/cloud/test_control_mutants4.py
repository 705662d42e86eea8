"""tools/fotatools/cloud/control.py: DescribeJobExecution through the control API takes an
optional executionNumber (an integer, as boto3 sends it) and answers for that execution."""

from __future__ import annotations

import pytest

from fotatools.cloud.control import ControlApi
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import ControlError, JobsEngine, thing_arn
from fotatools.cloud.store import ObjectStore


def test_describe_job_execution_by_its_execution_number(tmp_path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    api = ControlApi(JobsEngine(db, presign=store.presign, minute=60.0), store, None,  # type: ignore[arg-type]
                     "localhost", 8883)
    try:
        api.call("CreateThing", {"thingName": "a"})
        api.call("CreateJob", {"jobId": "j", "targets": [thing_arn("a")], "document": {}})
        latest = api.call("DescribeJobExecution", {"jobId": "j", "thingName": "a"})["execution"]
        first = api.call("DescribeJobExecution", {"jobId": "j", "thingName": "a",
                                                  "executionNumber": 1})["execution"]
        assert first == latest and first["executionNumber"] == 1 and first["status"] == "QUEUED"
        with pytest.raises(ControlError) as e:
            api.call("DescribeJobExecution", {"jobId": "j", "thingName": "a", "executionNumber": 2})
        assert e.value.kind == "ResourceNotFoundException"
        with pytest.raises(ControlError) as e:
            api.call("DescribeJobExecution", {"jobId": "j", "thingName": "a", "executionNumber": "1"})
        assert (e.value.kind, e.value.message) == ("InvalidRequestException", "executionNumber must be an integer")
    finally:
        db.close()
