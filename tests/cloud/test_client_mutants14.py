"""The local backend's job listing (tools/fotatools/cloud/client.py, LocalBackend.list_jobs)
against the stand-in's jobs engine, its control API called in place:
- a job deleted between ListJobs and its DescribeJob is left out, and the others are listed;
- why a job was canceled is its reasonCode, else its comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fotatools.backend import BackendError
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.jobs import ControlError, thing_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    yield from jobs_engine(tmp_path, things=("a",), clock=clock)


def backend(tmp_path: Path, engine, after_list=lambda: None, describe=None) -> LocalBackend:
    """A LocalBackend whose control-API calls the engine answers, as the stand-in's control
    server does (a ControlError becomes the BackendError LocalBackend.call raises)."""
    b = LocalBackend(tmp_path)
    ops = {"ListJobs": lambda p: engine.list_jobs(p.get("status")),
           "DescribeJob": describe or (lambda p: engine.describe_job(p["jobId"]))}

    def call(op: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        try:
            out = ops[op](params or {})
        except ControlError as e:
            raise BackendError(f"{op} failed: {e.kind}: {e.message}", e.kind) from None
        if op == "ListJobs":
            after_list()
        return out

    b.call = call  # type: ignore[method-assign]
    return b


def create(engine, clock, job_id: str) -> None:
    engine.create_job({"jobId": job_id, "targets": [thing_arn("a")], "document": {}})
    clock.now += 1  # a creation time of its own: the listing is newest first


def test_a_job_deleted_while_the_jobs_are_listed_is_left_out(tmp_path, engine, clock):
    for job_id in ("old", "gone", "new"):
        create(engine, clock, job_id)
    b = backend(tmp_path, engine, after_list=lambda: engine.delete_job({"jobId": "gone", "force": True}))
    assert [j.job_id for j in b.list_jobs()] == ["new", "old"]


def test_another_error_of_describe_job_is_not_swallowed(tmp_path, engine, clock):
    create(engine, clock, "j")

    def refuse(p: dict[str, Any]) -> dict[str, Any]:
        raise ControlError("ThrottlingException", "Rate exceeded")

    with pytest.raises(BackendError) as e:
        backend(tmp_path, engine, describe=refuse).list_jobs()
    assert e.value.code == "ThrottlingException"


def test_why_a_job_was_canceled_is_its_reason_code_else_its_comment(tmp_path, engine, clock):
    for job_id in ("both", "code", "comment", "neither", "running"):
        create(engine, clock, job_id)
    engine.cancel_job({"jobId": "both", "reasonCode": "BAD_BUILD", "comment": "crashes at boot"})
    engine.cancel_job({"jobId": "code", "reasonCode": "ABORTED_BY_OPERATOR"})
    engine.cancel_job({"jobId": "comment", "comment": "wrong hall"})
    engine.cancel_job({"jobId": "neither"})
    reasons = {j.job_id: j.reason_code for j in backend(tmp_path, engine).list_jobs()}
    assert reasons == {"both": "BAD_BUILD", "code": "ABORTED_BY_OPERATOR", "comment": "wrong hall",
                       "neither": None, "running": None}
