"""GetPendingJobExecutions lists every pending execution of a thing, in AWS's order: IN_PROGRESS
ones first, then QUEUED ones, each by the time it was queued. A FOTA job queued behind many
other jobs is still listed, so a device that looks for it in the list finds it."""

from __future__ import annotations

import json

import pytest
from tests.cloud.conftest import unique


def create(backend, job_id: str, thing: str, operation: str) -> None:
    backend.call("CreateJob", {"jobId": job_id, "targets": [backend.thing_arn(thing)],
                               "document": json.dumps({"operation": operation})})


@pytest.mark.parametrize("others", [11, 50])
def test_a_job_behind_many_others_is_listed_in_queue_order(backend, make_device, others: int):
    d = make_device("busy")
    queued = [unique(f"other{i}") for i in range(others)]
    for job_id in queued:
        create(backend, job_id, d.name, "reboot")
    fota = unique("fota")
    create(backend, fota, d.name, "fota")
    kind, body = d.request("get")
    assert kind == "accepted" and body["inProgressJobs"] == []
    assert [s["jobId"] for s in body["queuedJobs"]] == queued + [fota]
    times = [s["queuedAt"] for s in body["queuedJobs"]]
    assert times == sorted(times)


def test_in_progress_executions_come_first_by_queue_time_not_start_time(backend, make_device):
    d = make_device("order")
    jobs = [unique(f"job{i}") for i in range(4)]
    for job_id in jobs:
        create(backend, job_id, d.name, "reboot")
    # started in the reverse order of queuing
    assert d.request(f"{jobs[2]}/update", {"status": "IN_PROGRESS"})[0] == "accepted"
    assert d.request(f"{jobs[1]}/update", {"status": "IN_PROGRESS"})[0] == "accepted"
    body = d.request("get")[1]
    assert [s["jobId"] for s in body["inProgressJobs"]] == [jobs[1], jobs[2]]
    assert [s["jobId"] for s in body["queuedJobs"]] == [jobs[0], jobs[3]]
    # the next execution is the IN_PROGRESS one queued first, for start-next and $next alike
    assert d.request("$next/get")[1]["execution"]["jobId"] == jobs[1]
    assert d.request("start-next")[1]["execution"]["jobId"] == jobs[1]
