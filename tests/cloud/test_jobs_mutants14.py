"""tools/fotatools/cloud/jobs.py as AWS IoT documents it, on an engine of its own:
- a rejected request echoes its clientToken (the Jobs MQTT API's ErrorResponse carries it),
  an InternalError too: the device matches the answer to its request by it;
- UpdateJobExecution's expectedVersion is a Long with no lower bound: 0, which no execution
  ever has (versions start at 1), is a VersionMismatch carrying the execution's state, not a
  malformed request;
- CancelJobExecution without statusDetails leaves the execution's statusDetails unchanged
  ("If not specified, the statusDetails are unchanged");
- a thing leaving the group of a CONTINUOUS job keeps the executions it already ended: a
  terminal state is final, only a QUEUED execution becomes REMOVED;
- the jobs service catches up on what fell due while it was down as it starts, before its
  timer's first tick."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from fotatools.cloud.jobs import JobsService, group_arn, thing_arn

from tests.cloud.engines import Clock, jobs_engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(tmp_path, clock):
    yield from jobs_engine(tmp_path, things=("a",), clock=clock)


def ask(engine, topic: str, body: dict) -> tuple[str, dict]:
    """One device request; the reply's kind (accepted/rejected) and body."""
    sent: list[tuple[str, bytes]] = []
    engine.publish = lambda t, p: sent.append((t, p))
    request = f"$aws/things/a/jobs/{topic}"
    engine.handle(request, json.dumps(body).encode())
    replies = [(t[len(request) + 1:], json.loads(p)) for t, p in sent if t.startswith(request + "/")]
    assert len(replies) == 1, sent
    return replies[0]


def status(engine, job_id: str) -> str:
    return engine.describe_job_execution(job_id, "a")["execution"]["status"]


def test_a_rejected_request_echoes_its_client_token(engine):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    kind, body = ask(engine, "j/update", {"status": "NOPE", "clientToken": "tok-1"})
    assert (kind, body["code"], body["clientToken"]) == ("rejected", "InvalidRequest", "tok-1")
    kind, body = ask(engine, "nosuchjob/update", {"status": "IN_PROGRESS", "clientToken": "tok-2"})
    assert (kind, body["code"], body["clientToken"]) == ("rejected", "ResourceNotFound", "tok-2")
    kind, body = ask(engine, "j/update", {"status": "NOPE"})
    assert kind == "rejected" and "clientToken" not in body


def test_an_internal_error_echoes_the_client_token_too(engine, caplog):
    def broken(thing):
        raise RuntimeError("database gone")

    engine._get_pending = broken
    kind, body = ask(engine, "get", {"clientToken": "tok-3"})
    assert (kind, body["code"], body["clientToken"]) == ("rejected", "InternalError", "tok-3")
    assert body["message"] == "Internal error: RuntimeError"
    kind, body = ask(engine, "get", {})
    assert (kind, body["code"]) == ("rejected", "InternalError") and "clientToken" not in body
    assert "internal error on $aws/things/a/jobs/get" in caplog.text


def test_an_expected_version_of_0_is_a_version_mismatch_with_the_execution_state(engine):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {}})
    kind, body = ask(engine, "j/update", {"status": "IN_PROGRESS", "expectedVersion": 0})
    assert (kind, body["code"]) == ("rejected", "VersionMismatch")
    assert body["executionState"] == {"status": "QUEUED", "versionNumber": 1}
    assert status(engine, "j") == "QUEUED"
    kind, body = ask(engine, "j/update", {"status": "IN_PROGRESS", "expectedVersion": -1})
    assert (kind, body["code"]) == ("rejected", "InvalidRequest")  # below 0: refused as such
    kind, _ = ask(engine, "j/update", {"status": "IN_PROGRESS", "expectedVersion": 1})
    assert kind == "accepted" and status(engine, "j") == "IN_PROGRESS"


def control_details(engine, job_id: str) -> object:
    return engine.describe_job_execution(job_id, "a")["execution"]["statusDetails"]["detailsMap"]


def test_cancel_job_execution_without_status_details_leaves_them_unchanged(engine):
    engine.create_job({"jobId": "run", "targets": [thing_arn("a")], "document": {}})
    kind, _ = ask(engine, "run/update", {"status": "IN_PROGRESS", "statusDetails": {"step": "3"}})
    assert kind == "accepted"
    engine.cancel_job_execution({"jobId": "run", "thingName": "a", "force": True})
    assert status(engine, "run") == "CANCELED"
    assert control_details(engine, "run") == {"step": "3"}
    engine.create_job({"jobId": "queued", "targets": [thing_arn("a")], "document": {}})
    engine.cancel_job_execution({"jobId": "queued", "thingName": "a"})
    assert status(engine, "queued") == "CANCELED"
    assert control_details(engine, "queued") == {}
    engine.create_job({"jobId": "told", "targets": [thing_arn("a")], "document": {}})
    engine.cancel_job_execution({"jobId": "told", "thingName": "a", "statusDetails": {"why": "hall"}})
    assert control_details(engine, "told") == {"why": "hall"}


def test_a_thing_leaving_a_continuous_jobs_group_keeps_the_execution_it_ended(engine):
    engine.create_thing_group("g")
    engine.add_thing_to_group("g", "a")
    engine.create_job({"jobId": "j", "targets": [group_arn("g")], "document": {},
                       "targetSelection": "CONTINUOUS"})
    ask(engine, "start-next", {})
    kind, _ = ask(engine, "j/update", {"status": "SUCCEEDED"})
    assert kind == "accepted"
    before = engine.describe_job_execution("j", "a")["execution"]
    engine.remove_thing_from_group("g", "a")
    after = engine.describe_job_execution("j", "a")["execution"]
    assert after["status"] == "SUCCEEDED" and after["versionNumber"] == before["versionNumber"]
    assert engine.describe_job("j")["job"]["jobProcessDetails"]["numberOfSucceededThings"] == 1


def test_the_service_times_out_what_fell_due_while_it_was_down_as_it_starts(engine, clock):
    engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": {},
                       "timeoutConfig": {"inProgressTimeoutInMinutes": 1}})
    ask(engine, "start-next", {})
    clock.now += 61  # the service was down when the minute ran out
    assert status(engine, "j") == "IN_PROGRESS"
    subscribed = threading.Event()
    subscribed.set()
    # the service around the engine, without a broker and with a timer that never ticks: only
    # start() itself can end the overdue execution
    service = SimpleNamespace(
        engine=engine, host="localhost", port=1, subscribed=subscribed, streams=None, _threads=[],
        _work=None, _handle=None, _worker=lambda *args: None, _timer=lambda: None,
        client=SimpleNamespace(connect=lambda *args, **kw: None, loop_start=lambda: None))
    assert JobsService.start(service) is service  # type: ignore[arg-type]
    assert status(engine, "j") == "TIMED_OUT"
