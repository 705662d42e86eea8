"""tools/fotatools/cloud/db.py's executions_for_job, the query under ListJobExecutionsForJob:
the status filter, with and without the latest-only filter."""

from __future__ import annotations

import pytest

from fotatools.cloud.db import Database


def execution(job: str, thing: str, number: int, status: str) -> dict:
    return {"job_id": job, "thing_name": thing, "execution_number": number, "status": status,
            "version": 1, "queued_at": float(number), "last_updated_at": float(number)}


@pytest.fixture()
def db(tmp_path):
    d = Database(tmp_path / "cloud.db")
    for row in [execution("j1", "a", 1, "FAILED"), execution("j1", "a", 2, "QUEUED"),
                execution("j1", "b", 1, "IN_PROGRESS"), execution("j1", "c", 1, "FAILED"),
                execution("j2", "a", 1, "QUEUED")]:
        d.insert_execution(row)
    yield d
    d.close()


def names(rows: list[dict]) -> list[tuple[str, int, str]]:
    return [(r["thing_name"], r["execution_number"], r["status"]) for r in rows]


def test_the_status_filter_keeps_only_executions_of_that_status(db):
    assert names(db.executions_for_job("j1")) == [("a", 2, "QUEUED"), ("b", 1, "IN_PROGRESS"),
                                                  ("c", 1, "FAILED")]
    assert names(db.executions_for_job("j1", "QUEUED")) == [("a", 2, "QUEUED")]
    assert names(db.executions_for_job("j1", "FAILED")) == [("c", 1, "FAILED")]  # a's retried one is not the latest
    assert names(db.executions_for_job("j1", "FAILED", latest_only=False)) == [("a", 1, "FAILED"), ("c", 1, "FAILED")]
    assert names(db.executions_for_job("j1", "SUCCEEDED")) == []
    assert names(db.executions_for_job("j1", None)) == names(db.executions_for_job("j1"))
    assert names(db.executions_for_job("j3", "QUEUED")) == []
