"""The Jobs device MQTT API of the local stand-in, driven by paho devices over TLS."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.cloud.conftest import MINUTE, unique, wait_until

from fotatools.backend import Rollout


def create(backend, job_id, things, document=None, **params):
    """CreateJob through the control API with boto3-style parameters."""
    targets = [backend.thing_arn(t) if not t.startswith("arn:") else t for t in things]
    body = {"jobId": job_id, "targets": targets, "document": json.dumps(document or {"operation": "test"})}
    body.update(params)
    return backend.call("CreateJob", body)


def control_execution(backend, job_id, thing):
    return backend.call("DescribeJobExecution", {"jobId": job_id, "thingName": thing})["execution"]


def test_get_pending_lists_queued_and_in_progress(backend, make_device):
    d = make_device()
    kind, body = d.request("get")
    assert kind == "accepted"
    assert body["inProgressJobs"] == [] and body["queuedJobs"] == []
    assert isinstance(body["timestamp"], int) and abs(body["timestamp"] - time.time()) < 5
    j1, j2 = unique("job"), unique("job")
    create(backend, j1, [d.name])
    create(backend, j2, [d.name])
    assert d.request("start-next")[1]["execution"]["jobId"] == j1
    kind, body = d.request("get", {"clientToken": "tok-1"})
    assert kind == "accepted" and body["clientToken"] == "tok-1"
    [inprog], [queued] = body["inProgressJobs"], body["queuedJobs"]
    assert inprog["jobId"] == j1 and queued["jobId"] == j2
    assert set(inprog) == {"jobId", "queuedAt", "startedAt", "lastUpdatedAt", "executionNumber", "versionNumber"}
    assert set(queued) == {"jobId", "queuedAt", "lastUpdatedAt", "executionNumber", "versionNumber"}
    assert inprog["versionNumber"] == 2 and queued["versionNumber"] == 1
    assert inprog["executionNumber"] == queued["executionNumber"] == 1


def test_notify_lists_at_most_ten_and_get_pending_all(backend, make_device):
    d = make_device()
    for _ in range(12):
        create(backend, unique("many"), [d.name])
    body = d.request("get")[1]
    assert len(body["queuedJobs"]) == 12 and body["inProgressJobs"] == []
    notify = d.events("notify")[-1]
    assert sum(len(v) for v in notify["jobs"].values()) == 10


def test_create_notifies_and_resolves_presigned_url(backend, cloud, make_device, firmware_url):
    d = make_device()
    job_id = unique("fota")
    doc = {"operation": "fota", "bc_url": f"${{aws:iot:s3-presigned-url:{firmware_url}}}",
           "nested": ["x ${aws:iot:s3-presigned-url:https://b-1.s3.eu-west-1.amazonaws.com/k/f.bin} y"]}
    create(backend, job_id, [d.name], doc, presignedUrlConfig={"expiresInSec": 120})
    notify = d.event("notify")
    [summary] = notify["jobs"]["QUEUED"]
    assert summary["jobId"] == job_id and summary["versionNumber"] == 1 and "IN_PROGRESS" not in notify["jobs"]
    nxt = d.event("notify-next")["execution"]
    assert nxt["jobId"] == job_id and nxt["status"] == "QUEUED" and nxt["thingName"] == d.name
    url = nxt["jobDocument"]["bc_url"]
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("https", "localhost", cloud.store_port)
    assert parts.path == "/" + "/".join(urlsplit(firmware_url).path.split("/")[1:])
    expires = int(parse_qs(parts.query)["X-Fota-Expires"][0])
    assert 100 <= expires - time.time() <= 125
    nested = nxt["jobDocument"]["nested"][0]
    assert nested.startswith("x https://localhost:") and "/b-1/k/f.bin?" in nested and nested.endswith(" y")
    # The control plane keeps the document as given.
    stored = json.loads(backend.call("GetJobDocument", {"jobId": job_id})["document"])
    assert stored == doc


def test_start_next_update_and_complete(backend, make_device):
    d = make_device()
    job_id = unique("job")
    create(backend, job_id, [d.name], {"operation": "fota", "n": 1})
    d.event("notify-next")
    d.clear()
    kind, body = d.request("start-next", {"statusDetails": {"step": "download"}})
    assert kind == "accepted"
    ex = body["execution"]
    assert ex["status"] == "IN_PROGRESS" and ex["versionNumber"] == 2 and ex["executionNumber"] == 1
    assert ex["statusDetails"] == {"step": "download"} and ex["jobDocument"] == {"operation": "fota", "n": 1}
    assert "startedAt" in ex and "approximateSecondsBeforeTimedOut" not in ex
    # Starting an IN_PROGRESS execution again changes nothing.
    ex2 = d.request("start-next", {"statusDetails": {"step": "other"}})[1]["execution"]
    assert ex2["versionNumber"] == 2 and ex2["statusDetails"] == {"step": "download"}
    assert d.events("notify") == [] and d.events("notify-next") == []
    kind, body = d.request(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": 2,
                                                 "statusDetails": {"result": "ok"},
                                                 "includeJobExecutionState": True,
                                                 "includeJobDocument": True})
    assert kind == "accepted"
    assert body["executionState"] == {"status": "SUCCEEDED", "statusDetails": {"result": "ok"},
                                      "versionNumber": 3}
    assert body["jobDocument"] == {"operation": "fota", "n": 1}
    assert d.event("notify") ["jobs"] == {}
    assert "execution" not in d.event("notify-next")
    job = backend.describe_job(job_id)
    assert job.status == "COMPLETED" and job.counts["SUCCEEDED"] == 1
    [e] = backend.list_executions(job_id)
    assert (e.status, e.status_details, e.version_number) == ("SUCCEEDED", {"result": "ok"}, 3)


def test_update_defaults_leave_out_state_and_document(backend, make_device):
    d = make_device()
    job_id = unique("job")
    create(backend, job_id, [d.name])
    kind, body = d.request(f"{job_id}/update", {"status": "IN_PROGRESS"})
    assert kind == "accepted" and set(body) == {"timestamp", "clientToken"}


def test_start_next_with_nothing_pending(make_device):
    d = make_device()
    kind, body = d.request("start-next")
    assert kind == "accepted" and "execution" not in body and "timestamp" in body
    kind, body = d.request("$next/get")
    assert kind == "accepted" and "execution" not in body


def test_describe(backend, make_device):
    d = make_device()
    j1, j2 = unique("job"), unique("job")
    create(backend, j1, [d.name], {"a": 1})
    create(backend, j2, [d.name], {"b": 2})
    ex = d.request("$next/get")[1]["execution"]
    assert ex["jobId"] == j1 and ex["jobDocument"] == {"a": 1}
    ex = d.request(f"{j2}/get", {"includeJobDocument": False})[1]["execution"]
    assert ex["jobId"] == j2 and "jobDocument" not in ex
    d.request(f"{j2}/update", {"status": "IN_PROGRESS"})
    assert d.request("$next/get")[1]["execution"]["jobId"] == j2  # IN_PROGRESS comes first
    assert d.request(f"{j1}/get", {"executionNumber": 1})[1]["execution"]["executionNumber"] == 1
    kind, body = d.request(f"{j1}/get", {"executionNumber": 7})
    assert (kind, body["code"]) == ("rejected", "ResourceNotFound")
    d.request(f"{j1}/update", {"status": "REJECTED"})
    kind, body = d.request(f"{j1}/get")
    assert (kind, body["code"]) == ("rejected", "TerminalStateReached")


def test_version_mismatch_carries_execution_state(backend, make_device):
    d = make_device()
    job_id = unique("job")
    create(backend, job_id, [d.name])
    d.request("start-next", {"statusDetails": {"k": "v"}})
    kind, body = d.request(f"{job_id}/update", {"status": "SUCCEEDED", "expectedVersion": 1})
    assert kind == "rejected" and body["code"] == "VersionMismatch"
    assert body["executionState"] == {"status": "IN_PROGRESS", "statusDetails": {"k": "v"}, "versionNumber": 2}
    assert isinstance(body["message"], str) and body["message"]
    assert control_execution(backend, job_id, d.name)["status"] == "IN_PROGRESS"


@pytest.mark.parametrize("start,target", [
    ("SUCCEEDED", "IN_PROGRESS"), ("SUCCEEDED", "FAILED"), ("FAILED", "SUCCEEDED"),
    ("REJECTED", "IN_PROGRESS"), (None, "QUEUED"), (None, "TIMED_OUT"), (None, "CANCELED"),
    (None, "REMOVED"),
])
def test_invalid_state_transitions(backend, make_device, start, target):
    d = make_device()
    job_id = unique("job")
    create(backend, job_id, [d.name])
    if start:
        assert d.request(f"{job_id}/update", {"status": start})[0] == "accepted"
    kind, body = d.request(f"{job_id}/update", {"status": target})
    assert kind == "rejected" and body["code"] == "InvalidStateTransition"
    assert body["executionState"]["status"] == (start or "QUEUED")


def test_status_details_replace_and_keep(backend, make_device):
    d = make_device()
    job_id = unique("job")
    create(backend, job_id, [d.name])
    d.request(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"a": "1"}})
    d.request(f"{job_id}/update", {"status": "IN_PROGRESS"})
    assert d.request(f"{job_id}/get")[1]["execution"]["statusDetails"] == {"a": "1"}
    body = d.request(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"b": "2"},
                                          "includeJobExecutionState": True})[1]
    assert body["executionState"]["statusDetails"] == {"b": "2"} and body["executionState"]["versionNumber"] == 4


BAD_REQUESTS = [
    # (topic suffix, raw payload, expected code)
    ("foo", b"{}", "InvalidTopic"),
    ("a/b/c", b"{}", "InvalidTopic"),
    ("bad.job/update", b'{"status":"SUCCEEDED"}', "InvalidTopic"),
    ("$next/update", b'{"status":"SUCCEEDED"}', "InvalidTopic"),
    ("get", b"{", "InvalidJson"),
    ("get", b"\xff\xfe", "InvalidJson"),
    ("get", b"[1, 2]", "InvalidRequest"),
    ("get", b'{"clientToken": 5}', "InvalidRequest"),
    ("get", json.dumps({"clientToken": "x" * 65}).encode(), "InvalidRequest"),
    ("start-next", b'{"stepTimeoutInMinutes": 0}', "InvalidRequest"),
    ("start-next", b'{"stepTimeoutInMinutes": 10081}', "InvalidRequest"),
    ("start-next", b'{"stepTimeoutInMinutes": "5"}', "InvalidRequest"),
    ("start-next", b'{"stepTimeoutInMinutes": true}', "InvalidRequest"),
    ("start-next", b'{"statusDetails": {"bad key": "v"}}', "InvalidRequest"),
    ("JOB/update", b'{}', "InvalidRequest"),
    ("JOB/update", b'{"status": "DONE"}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "statusDetails": []}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "statusDetails": {"k": 1}}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "statusDetails": {"k": ""}}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "statusDetails": {"k": "a\\nb"}}', "InvalidRequest"),
    ("JOB/update", json.dumps({"status": "IN_PROGRESS", "statusDetails": {"k": "v" * 1025}}).encode(),
     "InvalidRequest"),
    ("JOB/update", json.dumps({"status": "IN_PROGRESS", "statusDetails": {"k" * 129: "v"}}).encode(),
     "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "expectedVersion": "1"}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "executionNumber": 0}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "includeJobDocument": "yes"}', "InvalidRequest"),
    ("JOB/get", b'{"includeJobDocument": 1}', "InvalidRequest"),
    ("JOB/update", b'{"status": "IN_PROGRESS", "executionNumber": 9}', "ResourceNotFound"),
    ("nosuchjob/update", b'{"status": "IN_PROGRESS"}', "ResourceNotFound"),
    ("nosuchjob/get", b'{}', "ResourceNotFound"),
]


@pytest.fixture(scope="module")
def sweep_device(backend, tmp_path_factory):
    from tests.cloud.conftest import Device
    name = unique("sweep")
    d = Device(backend.provision(name), tmp_path_factory.mktemp("sweep"))
    job_id = unique("sweepjob")
    create(backend, job_id, [name])
    yield d, job_id
    d.close()


@pytest.mark.parametrize("suffix,payload,code", BAD_REQUESTS)
def test_bad_requests_are_rejected(backend, sweep_device, suffix, payload, code):
    d, job_id = sweep_device
    suffix = suffix.replace("JOB", job_id)
    kind, body = d.request(suffix, payload)
    assert kind == "rejected", body
    assert body["code"] == code, body
    assert isinstance(body["timestamp"], int) and body["message"]
    # Nothing changed.
    assert control_execution(backend, job_id, d.name)["status"] == "QUEUED"


def test_client_token_is_echoed_on_rejection(sweep_device):
    d, job_id = sweep_device
    kind, body = d.request(f"{job_id}/update", {"status": "NOPE", "clientToken": "abc"})
    assert (kind, body["code"], body["clientToken"]) == ("rejected", "InvalidRequest", "abc")


def test_empty_payload_is_an_empty_request(sweep_device):
    d, _ = sweep_device
    kind, body = d.request("get", b"")
    assert kind == "accepted" and len(body["queuedJobs"]) == 1 and "clientToken" not in body


def test_notify_next_follows_the_head_of_the_queue(backend, make_device):
    d = make_device()
    j1, j2, j3 = unique("j1"), unique("j2"), unique("j3")
    create(backend, j1, [d.name])
    assert d.event("notify-next")["execution"]["jobId"] == j1
    create(backend, j2, [d.name])
    notify = d.event("notify", where=lambda b: len(b["jobs"].get("QUEUED", [])) == 2)
    assert [s["jobId"] for s in notify["jobs"]["QUEUED"]] == [j1, j2]
    create(backend, j3, [d.name])
    d.event("notify", where=lambda b: len(b["jobs"]["QUEUED"]) == 3)
    d.request("get")  # answered after any event the service published before it
    assert d.events("notify-next") == []  # the head did not change (the first one was taken)
    d.clear()
    d.request(f"{j1}/update", {"status": "IN_PROGRESS"})  # head unchanged, list unchanged
    d.request(f"{j3}/update", {"status": "IN_PROGRESS"})  # both IN_PROGRESS: j1, older, stays head
    d.request("get")
    assert d.events("notify") == [] and d.events("notify-next") == []
    d.request(f"{j1}/update", {"status": "SUCCEEDED"})
    nxt = d.event("notify-next")["execution"]
    assert nxt["jobId"] == j3 and nxt["status"] == "IN_PROGRESS"
    notify = d.event("notify")["jobs"]
    assert [s["jobId"] for s in notify["IN_PROGRESS"]] == [j3]
    assert [s["jobId"] for s in notify["QUEUED"]] == [j2]


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_things_cannot_reach_each_others_topics(backend, make_device):
    a = make_device("a")
    b = make_device("b")
    job_id = unique("job")
    create(backend, job_id, [b.name])
    b.event("notify-next")
    # Subscriptions outside the thing's own topics are refused (SUBACK 0x80).
    assert a.subscribe(f"$aws/things/{b.name}/jobs/#") == [128]
    assert a.subscribe(f"$aws/things/{b.name}/jobs/notify-next") == [128]
    assert a.subscribe("$aws/things/+/jobs/notify") == [128]
    assert a.subscribe("#") == [128]
    # Publishes on another thing's topics are dropped: B's job is untouched, B hears nothing.
    b.clear()
    a.publish(f"$aws/things/{b.name}/jobs/{job_id}/update", json.dumps({"status": "SUCCEEDED"}))
    a.publish(f"$aws/things/{b.name}/jobs/start-next", "{}")
    a.publish(f"$aws/things/{b.name}/jobs/notify", '{"jobs": {}}')
    a.request("get")  # the service has handled everything A sent before this
    assert control_execution(backend, job_id, b.name)["status"] == "QUEUED"
    assert b.request("get")[0] == "accepted"  # B's own answer comes ...
    assert [t for t, _ in b.messages if t != f"{b.base}/get"] == []  # ... and only B's request before it
    # A asking about B's job through its own topics finds nothing.
    kind, body = a.request(f"{job_id}/get")
    assert (kind, body["code"]) == ("rejected", "ResourceNotFound")
    assert a.request(f"{job_id}/update", {"status": "SUCCEEDED"})[1]["code"] == "ResourceNotFound"
    assert b.request(f"{job_id}/get")[1]["execution"]["status"] == "QUEUED"
    # A sees none of B's replies or events (any would have come before A's next answer).
    a.request("get")
    assert not [t for t, _ in a.messages if b.name in t]


def test_step_timeout(backend, make_device):
    d = make_device()
    job_id = unique("step")
    create(backend, job_id, [d.name])
    ex = d.request("start-next", {"stepTimeoutInMinutes": 1})[1]["execution"]
    assert 0 <= ex["approximateSecondsBeforeTimedOut"] <= 60
    d.clear()
    wait_until(lambda: control_execution(backend, job_id, d.name)["status"] == "TIMED_OUT",
               timeout=10 * MINUTE, what="TIMED_OUT")
    assert "execution" not in d.event("notify-next")
    kind, body = d.request(f"{job_id}/update", {"status": "SUCCEEDED"})
    assert (kind, body["code"], body["executionState"]["status"]) == ("rejected", "InvalidStateTransition",
                                                                      "TIMED_OUT")
    assert backend.describe_job(job_id).counts["TIMED_OUT"] == 1


def test_step_timer_reset_and_cancelled(backend, make_device):
    d = make_device()
    job_id = unique("step")
    create(backend, job_id, [d.name])
    d.request("start-next", {"stepTimeoutInMinutes": 1})
    d.request(f"{job_id}/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1})
    ex = d.request(f"{job_id}/get")[1]["execution"]
    assert "approximateSecondsBeforeTimedOut" not in ex
    time.sleep(2 * MINUTE)
    assert control_execution(backend, job_id, d.name)["status"] == "IN_PROGRESS"


def test_in_progress_timeout_from_job_config(backend, make_device):
    d = make_device()
    job_id = unique("tmo")
    create(backend, job_id, [d.name], timeoutConfig={"inProgressTimeoutInMinutes": 1})
    d.request("start-next")
    # Updates do not reset the job's in-progress timer.
    d.request(f"{job_id}/update", {"status": "IN_PROGRESS", "statusDetails": {"p": "50"}})
    wait_until(lambda: control_execution(backend, job_id, d.name)["status"] == "TIMED_OUT",
               timeout=10 * MINUTE, what="TIMED_OUT")


def test_cancel_job(backend, make_device):
    queued, busy = make_device("q"), make_device("busy")
    job_id = unique("cancel")
    create(backend, job_id, [queued.name, busy.name])
    busy.request("start-next")
    queued.event("notify-next")
    queued.clear()
    backend.cancel_job(job_id, reason="BAD_BUILD")
    assert "execution" not in queued.event("notify-next")
    assert queued.event("notify")["jobs"] == {}
    job = backend.describe_job(job_id)
    assert job.status == "CANCELED" and job.reason_code == "BAD_BUILD"
    assert job.counts["CANCELED"] == 1 and job.counts["IN_PROGRESS"] == 1
    # Without force the IN_PROGRESS execution runs to its end.
    assert busy.request(f"{job_id}/update", {"status": "SUCCEEDED"})[0] == "accepted"
    assert backend.describe_job(job_id).status == "CANCELED"


def test_force_cancel_job(backend, make_device):
    d = make_device()
    job_id = unique("force")
    create(backend, job_id, [d.name])
    d.request("start-next")
    d.clear()
    with pytest.raises(Exception, match="InvalidStateTransition"):
        backend.call("CancelJobExecution", {"jobId": job_id, "thingName": d.name})
    backend.cancel_job(job_id, force=True)
    assert "execution" not in d.event("notify-next")
    kind, body = d.request(f"{job_id}/update", {"status": "SUCCEEDED"})
    assert (kind, body["code"], body["executionState"]["status"]) == ("rejected", "InvalidStateTransition",
                                                                      "CANCELED")
    e = control_execution(backend, job_id, d.name)
    assert e["status"] == "CANCELED" and e["forceCanceled"] is True
    with pytest.raises(Exception, match="already canceled"):
        backend.cancel_job(job_id, force=True)


def test_cancel_job_execution(backend, make_device):
    a, b = make_device(), make_device()
    job_id = unique("cje")
    create(backend, job_id, [a.name, b.name])
    a.event("notify-next")
    backend.call("CancelJobExecution", {"jobId": job_id, "thingName": a.name,
                                        "statusDetails": {"why": "operator"}})
    assert "execution" not in a.event("notify-next")
    e = control_execution(backend, job_id, a.name)
    assert e["status"] == "CANCELED" and e["statusDetails"]["detailsMap"] == {"why": "operator"}
    assert backend.describe_job(job_id).status == "IN_PROGRESS"
    b.request(f"{job_id}/update", {"status": "SUCCEEDED"})
    assert backend.describe_job(job_id).status == "COMPLETED"


def test_job_for_a_group_and_continuous_targets(backend, make_device):
    a, b, late = make_device(), make_device(), make_device()
    group = unique("grp")
    arn = backend.create_thing_group(group, [a.name, b.name])
    snap, cont = unique("snap"), unique("cont")
    create(backend, snap, [arn])
    create(backend, cont, [arn], targetSelection="CONTINUOUS")
    assert {e.thing_name for e in backend.list_executions(snap)} == {a.name, b.name}
    backend.call("AddThingToThingGroup", {"thingGroupName": group, "thingName": late.name})
    assert late.event("notify-next")["execution"]["jobId"] == cont
    assert {e.thing_name for e in backend.list_executions(cont)} == {a.name, b.name, late.name}
    assert {e.thing_name for e in backend.list_executions(snap)} == {a.name, b.name}
    backend.call("RemoveThingFromThingGroup", {"thingGroupName": group, "thingName": late.name})
    assert control_execution(backend, cont, late.name)["status"] == "REMOVED"
    assert "execution" not in late.event("notify-next")
    for d in (a, b):
        d.request(f"{cont}/update", {"status": "SUCCEEDED"})
    assert backend.describe_job(cont).status == "IN_PROGRESS"  # continuous jobs never complete


def test_retry_after_failure(backend, make_device):
    d = make_device()
    job_id = unique("retry")
    create(backend, job_id, [d.name], jobExecutionsRetryConfig={
        "criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]})
    d.request("start-next")
    d.request(f"{job_id}/update", {"status": "FAILED"})
    ex = d.request(f"{job_id}/get")[1]["execution"]
    assert (ex["status"], ex["executionNumber"], ex["versionNumber"]) == ("QUEUED", 2, 1)
    assert d.request(f"{job_id}/get", {"executionNumber": 1})[1]["code"] == "TerminalStateReached"
    d.request(f"{job_id}/update", {"status": "FAILED"})
    assert d.request("start-next")[1].get("execution") is None
    assert backend.describe_job(job_id).status == "COMPLETED"


def test_rollout_releases_executions_gradually(backend, make_device):
    devices = [make_device("roll") for _ in range(5)]
    job_id = unique("rollout")
    backend.create_job(job_id, [backend.thing_arn(d.name) for d in devices], {"operation": "x"},
                       Rollout(maximum_per_minute=2))
    first = backend.list_executions(job_id)
    assert len(first) == 2
    assert backend.call("DescribeJob", {"jobId": job_id})["job"]["numberOfThingsAwaitingRollout"] == 3
    wait_until(lambda: len(backend.list_executions(job_id)) == 5, timeout=10 * MINUTE, what="rollout")
    execs = sorted(backend.list_executions(job_id), key=lambda e: e.queued_at or 0)
    t0 = execs[0].queued_at or 0
    windows = [int(((e.queued_at or 0) - t0) / MINUTE + 1e-6) for e in execs]
    assert windows[:2] == [0, 0] and windows[2] >= 1 and windows[4] >= 2
    assert max(windows.count(w) for w in set(windows)) <= 2
    # Every released thing heard of it.
    for d in devices:
        assert d.event("notify-next")["execution"]["jobId"] == job_id


def test_abort_criteria_cancel_the_job(backend, make_device):
    devices = [make_device("ab") for _ in range(4)]
    job_id = unique("abort")
    backend.create_job(job_id, [backend.thing_arn(d.name) for d in devices], {"operation": "x"},
                       Rollout(abort_failure_percent=50.0, abort_min_executed=2))
    devices[0].request(f"{job_id}/update", {"status": "FAILED"})
    assert backend.describe_job(job_id).status == "IN_PROGRESS"  # 1 executed < minimum 2
    devices[1].request("start-next")
    devices[1].request(f"{job_id}/update", {"status": "REJECTED"})
    job = backend.describe_job(job_id)
    assert job.status == "CANCELED" and job.reason_code
    assert job.counts["FAILED"] == 1 and job.counts["REJECTED"] == 1 and job.counts["CANCELED"] == 2
    for d in devices[2:]:
        assert "execution" not in d.event("notify-next", where=lambda b: "execution" not in b)


@pytest.mark.parametrize("failure_type,outcomes,aborted", [
    ("FAILED", ["REJECTED", "REJECTED"], False),
    ("REJECTED", ["REJECTED", "SUCCEEDED"], True),
    ("ALL", ["SUCCEEDED", "SUCCEEDED", "FAILED"], False),
])
def test_abort_failure_types(backend, make_device, failure_type, outcomes, aborted):
    devices = [make_device("ft", subscribe=None) for _ in range(len(outcomes) + 1)]
    job_id = unique("ftype")
    create(backend, job_id, [d.name for d in devices], abortConfig={"criteriaList": [{
        "failureType": failure_type, "action": "CANCEL", "thresholdPercentage": 50,
        "minNumberOfExecutedThings": 2}]})
    for d, outcome in zip(devices, outcomes):
        d.client.publish(f"{d.base}/{job_id}/update", json.dumps({"status": outcome}), qos=1).wait_for_publish(5)
    wait_until(lambda: backend.describe_job(job_id).counts[outcomes[-1]] >= 1, what="updates")
    wait_until(lambda: sum(backend.describe_job(job_id).counts[o] for o in set(outcomes)) == len(outcomes),
               what="all updates")
    assert (backend.describe_job(job_id).status == "CANCELED") is aborted


def test_exponential_rollout_rate_grows(backend, make_device):
    devices = [make_device("expo", subscribe=None) for _ in range(4)]
    job_id = unique("expo")
    create(backend, job_id, [d.name for d in devices], jobExecutionsRolloutConfig={"exponentialRate": {
        "baseRatePerMinute": 1, "incrementFactor": 2, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}})
    assert len(backend.list_executions(job_id)) == 1
    wait_until(lambda: len(backend.list_executions(job_id)) == 4, timeout=10 * MINUTE, what="rollout")
    execs = sorted(backend.list_executions(job_id), key=lambda e: e.queued_at or 0)
    t0 = execs[0].queued_at or 0
    windows = [int(((e.queued_at or 0) - t0) / MINUTE + 1e-6) for e in execs]
    # 1 thing in the first minute, then 2 (the rate doubled), then the last one
    assert windows[0] == 0 and windows[1] == windows[2] >= 1 and windows[3] > windows[2]


def test_cancel_stops_a_rollout(backend, make_device):
    devices = [make_device("stop", subscribe=None) for _ in range(3)]
    job_id = unique("stoproll")
    create(backend, job_id, [d.name for d in devices], jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    backend.cancel_job(job_id)
    time.sleep(2 * MINUTE)
    [e] = backend.list_executions(job_id)
    assert e.status == "CANCELED"
    assert "numberOfThingsAwaitingRollout" not in backend.call("DescribeJob", {"jobId": job_id})["job"]
