"""The local backend (tools/fotatools/cloud/client.py) lists a job's executions through the
stand-in's control API: each execution names its thing (the last part of the thingArn that
ListJobExecutionsForJob gives, as on AWS IoT), with its status and numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.cloud.jobs import thing_arn

from tests.cloud.engines import local_backend


@pytest.fixture()
def setup(tmp_path: Path):
    yield from local_backend(tmp_path)


def test_each_execution_names_its_thing(setup):
    backend, engine = setup
    things = ["sensor-1", "a:b_c-2", "x"]  # the characters a thing name may have
    for t in things:
        engine.create_thing(t)
    engine.create_job({"jobId": "j", "targets": [thing_arn(t) for t in things], "document": {}})
    execs = backend.list_executions("j")
    assert sorted(e.thing_name for e in execs) == sorted(things)
    assert all(e.job_id == "j" and e.status == "QUEUED" and e.execution_number == 1 for e in execs)
