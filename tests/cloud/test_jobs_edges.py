"""The stand-in's job configuration and device request fields (tools/fotatools/cloud/jobs.py),
in process: every bound on both sides, every field of the wrong type, and what a good
configuration becomes."""

from __future__ import annotations

from typing import Any

import pytest

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import MAX_DOCUMENT, ControlError, JobsEngine, RequestRejected


@pytest.fixture()
def engine(tmp_path):
    db = Database(tmp_path / "cloud.db")
    yield JobsEngine(db, presign=lambda bucket, key, expires: "https://x", minute=1.0)
    db.close()


def config(engine, **params: Any) -> Any:
    try:
        return engine._validate_job_config(params)
    except ControlError as e:
        assert e.kind == "InvalidRequestException"
        return e.message


RATE = "maximumPerMinute must be an integer 1..1000"
BASE = "exponentialRate.baseRatePerMinute must be an integer 1..1000"
FACTOR = "exponentialRate.incrementFactor must be 1.1..5 with at most one digit after the decimal"
CRIT = "rateIncreaseCriteria needs one of numberOfNotifiedThings or numberOfSucceededThings (>= 1)"


def exp(base: Any = 10, factor: Any = 2, crit: Any = None) -> dict:
    return {"jobExecutionsRolloutConfig": {"exponentialRate": {
        "baseRatePerMinute": base, "incrementFactor": factor,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 1} if crit is None else crit}}}


def test_rollout_bounds(engine):
    for m, ok in [(0, False), (1, True), (1000, True), (1001, False), (True, False), ("5", False), (2.0, False)]:
        got = config(engine, jobExecutionsRolloutConfig={"maximumPerMinute": m})
        assert got == ({"jobExecutionsRolloutConfig": {"maximumPerMinute": m}} if ok else RATE), m
    assert config(engine, jobExecutionsRolloutConfig=[]) == "jobExecutionsRolloutConfig must be an object"
    assert config(engine, jobExecutionsRolloutConfig={}) == {"jobExecutionsRolloutConfig": {}}
    assert config(engine, jobExecutionsRolloutConfig={"exponentialRate": 1}) == "exponentialRate must be an object"
    for base, ok in [(0, False), (1, True), (1000, True), (1001, False), (False, False)]:
        assert (config(engine, **exp(base=base)) == BASE) is not ok, base
    for factor, ok in [(1.0, False), (1.09, False), (1.1, True), (5, True), (5.1, False), (5.01, False), (True, False), ("2", False)]:
        assert (config(engine, **exp(factor=factor)) == FACTOR) is not ok, factor
    for crit, ok in [({"numberOfNotifiedThings": 1}, True), ({"numberOfSucceededThings": 1}, True),
                     ({"numberOfNotifiedThings": 0}, False), ({"numberOfSucceededThings": 0}, False),
                     ({"numberOfNotifiedThings": 1, "numberOfSucceededThings": 1}, False), ({}, False),
                     ({"numberOfNotifiedThings": True}, False), ({"other": 1}, False), ([1], False)]:
        assert (config(engine, **exp(crit=crit)) == CRIT) is not ok, crit
    assert config(engine, **exp(base=7, factor=3, crit={"numberOfSucceededThings": 4})) == {
        "jobExecutionsRolloutConfig": {"exponentialRate": {
            "baseRatePerMinute": 7, "incrementFactor": 3.0, "rateIncreaseCriteria": {"numberOfSucceededThings": 4}}}}


def abort(**c: Any) -> dict:
    crit = {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50,
            "minNumberOfExecutedThings": 1, **c}
    return {"abortConfig": {"criteriaList": [{k: v for k, v in crit.items() if v is not None}]}}


def test_abort_bounds(engine):
    assert config(engine, **abort()) == {"abortConfig": {"criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50.0, "minNumberOfExecutedThings": 1}]}}
    for t in ("FAILED", "REJECTED", "TIMED_OUT", "ALL"):
        assert config(engine, **abort(failureType=t))["abortConfig"]["criteriaList"][0]["failureType"] == t
    assert config(engine, **abort(failureType="CANCELED")) == \
        "abort failureType must be FAILED, REJECTED, TIMED_OUT or ALL"
    assert config(engine, **abort(action="STOP")) == "abort action must be CANCEL"
    pct = "thresholdPercentage must be 0..100 with at most two decimals"
    for p, ok in [(-0.01, False), (0, True), (100, True), (100.01, False), (12.34, True), (12.345, False),
                  (True, False), ("5", False), (None, False)]:
        assert (config(engine, **abort(thresholdPercentage=p)) == pct) is not ok, p
    n = "minNumberOfExecutedThings must be an integer >= 1"
    for v, ok in [(0, False), (1, True), (10**6, True), (True, False), (1.0, False), (None, False)]:
        assert (config(engine, **abort(minNumberOfExecutedThings=v)) == n) is not ok, v
    empty = "abortConfig.criteriaList must be a non-empty list"
    assert config(engine, abortConfig={"criteriaList": []}) == empty
    assert config(engine, abortConfig=[]) == empty and config(engine, abortConfig={}) == empty
    assert config(engine, abortConfig={"criteriaList": [1]}) == "abort criteria must be objects"


def test_timeout_presigned_and_retry_bounds(engine):
    t = "inProgressTimeoutInMinutes must be an integer 1..10080"
    for v, ok in [(0, False), (1, True), (10080, True), (10081, False), (True, False), (None, False)]:
        got = config(engine, timeoutConfig={"inProgressTimeoutInMinutes": v})
        assert got == ({"timeoutConfig": {"inProgressTimeoutInMinutes": v}} if ok else t), v
    assert config(engine, timeoutConfig=5) == t
    e = "presignedUrlConfig.expiresInSec must be an integer 60..3600"
    for v, ok in [(59, False), (60, True), (3600, True), (3601, False), (True, False), ("60", False)]:
        got = config(engine, presignedUrlConfig={"expiresInSec": v})
        assert got == ({"presignedUrlConfig": {"expiresInSec": v}} if ok else e), v
    assert config(engine, presignedUrlConfig={}) == {"presignedUrlConfig": {"expiresInSec": 3600}}
    assert config(engine, presignedUrlConfig={"roleArn": "r"}) == \
        {"presignedUrlConfig": {"expiresInSec": 3600, "roleArn": "r"}}
    assert config(engine, presignedUrlConfig=1) == "presignedUrlConfig must be an object"
    r = "numberOfRetries must be an integer 0..10"
    for v, ok in [(-1, False), (0, True), (10, True), (11, False), (True, False), (None, False)]:
        got = config(engine, jobExecutionsRetryConfig={"criteriaList": [{"failureType": "ALL", "numberOfRetries": v}]})
        assert got == ({"jobExecutionsRetryConfig": {"criteriaList": [
            {"failureType": "ALL", "numberOfRetries": v}]}} if ok else r), v
    for f, ok in [("FAILED", True), ("TIMED_OUT", True), ("ALL", True), ("REJECTED", False)]:
        got = config(engine, jobExecutionsRetryConfig={"criteriaList": [{"failureType": f, "numberOfRetries": 1}]})
        assert (got == "retry failureType must be FAILED, TIMED_OUT or ALL") is not ok, f
    assert config(engine, jobExecutionsRetryConfig={"criteriaList": []}) == \
        "jobExecutionsRetryConfig.criteriaList must be a non-empty list"
    assert config(engine) == {}


def test_device_request_integers_both_sides(engine):
    def opt(req: dict, low: int, high: int | None = None) -> Any:
        try:
            return engine._opt_int(req, "n", low, high)
        except RequestRejected as e:
            assert e.code == "InvalidRequest"
            return str(e)

    assert opt({}, 0) is None
    assert opt({"n": 0}, 0) == 0 and opt({"n": -1}, 0) == "n must be an integer >= 0"
    assert opt({"n": 5}, 1, 5) == 5 and opt({"n": 6}, 1, 5) == "n must be an integer 1..5"
    assert opt({"n": 1}, 1, 5) == 1 and opt({"n": 0}, 1, 5) == "n must be an integer 1..5"
    assert opt({"n": True}, 0) == "n must be an integer >= 0" and opt({"n": "1"}, 0) == "n must be an integer >= 0"

    def step(v: Any) -> Any:
        try:
            return engine._step_timeout({"stepTimeoutInMinutes": v})
        except RequestRejected as e:
            return str(e)

    bad = "stepTimeoutInMinutes must be -1 or an integer 1..10080"
    assert engine._step_timeout({}) is None
    assert [step(v) for v in (-2, -1, 0, 1, 10080, 10081, True)] == [bad, -1, bad, 1, 10080, bad, bad]


def test_document_size_both_sides(engine):
    pad = MAX_DOCUMENT - len('{"a":""}')
    text, doc = engine._parse_document({"a": "x" * pad})
    assert len(text) == MAX_DOCUMENT and doc == {"a": "x" * pad}
    with pytest.raises(ControlError, match=f"document is larger than {MAX_DOCUMENT} bytes"):
        engine._parse_document({"a": "x" * (pad + 1)})
    with pytest.raises(ControlError, match="document is larger"):
        engine._parse_document('{"a":"' + "\u00e9" * (pad // 2 + 1) + '"}')  # bytes, not characters
    assert engine._parse_document('[1, 2]') == ("[1, 2]", [1, 2])
    with pytest.raises(ControlError, match="document must be a JSON object or its text"):
        engine._parse_document(5)
    with pytest.raises(ControlError, match="document is not valid JSON"):
        engine._parse_document("{")
    with pytest.raises(ControlError, match="presigned-URL placeholder has no S3 URL"):
        engine._parse_document({"u": "${aws:iot:s3-presigned-url:ftp://x}"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("minute", [60.0, 6.0])
def test_seconds_before_timed_out_in_api_seconds(tmp_path, minute):
    # The nearer of the step's and the job's deadline, in API seconds (a scaled minute too),
    # counting down, never below 0; no deadline, no field.
    import json

    clock = Clock()
    sent: list[tuple[str, Any]] = []
    db = Database(tmp_path / "cloud.db")
    e = JobsEngine(db, presign=lambda b, k, x: "https://x", minute=minute, clock=clock,
                   publish=lambda topic, payload: sent.append((topic, json.loads(payload))))
    for thing in ("a", "b", "c"):
        e.create_thing(thing)
    arn = "arn:aws:iot:local:000000000000:thing/"
    e.create_job({"jobId": "j", "targets": [arn + "a", arn + "b"], "document": {"operation": "x"},
                  "timeoutConfig": {"inProgressTimeoutInMinutes": 3}})
    e.create_job({"jobId": "k", "targets": [arn + "c"], "document": {"operation": "x"}})

    def start(thing: str, step: int | None) -> Any:
        e.handle(f"$aws/things/{thing}/jobs/start-next",
                 json.dumps({} if step is None else {"stepTimeoutInMinutes": step}).encode())
        return sent[-1][1]["execution"].get("approximateSecondsBeforeTimedOut")

    def left(thing: str, job: str = "j") -> Any:
        return e.describe_job_execution(job, thing)["execution"].get("approximateSecondsBeforeTimedOut")

    assert start("a", 2) == 120 and start("b", -1) == 180 and start("c", None) is None
    clock.now += minute / 2  # half a minute
    assert (left("a"), left("b"), left("c", "k")) == (90, 150, None)
    clock.now += minute * 1.5 - 0.01 * minute  # just before the step's deadline
    assert left("a") == 0 and left("b") == 60
    clock.now += minute * 5
    assert left("a") == 0
    db.close()


def test_a_job_id_both_sides(engine):
    engine.create_thing("a")
    target = ["arn:aws:iot:local:000000000000:thing/a"]
    for job_id in ("j" * 64, "a", "A-z_09"):
        engine.create_job({"jobId": job_id, "targets": target, "document": {"operation": "x"}})
    for job_id in ("j" * 65, "", "a b", "a.b", "ä", None, 5, "abc\n", "\nabc"):
        with pytest.raises(ControlError, match="invalid jobId .*: 1-64 characters of"):
            engine.create_job({"jobId": job_id, "targets": target, "document": {"operation": "x"}})
    with pytest.raises(ControlError, match="Job a already exists"):
        engine.create_job({"jobId": "a", "targets": target, "document": {"operation": "x"}})
    with pytest.raises(ControlError, match="document is required"):
        engine.create_job({"jobId": "b", "targets": target})
    # AWS: at most 2028 characters, pattern [^\p{C}]+ (at least one, no control or format
    # character); a space, an accent, an emoji are text
    for n, (d, ok) in enumerate([("d" * 2028, True), ("d" * 2029, False), (5, False), ("d", True),
                                 ("", False), ("a b é 🚀", True), ("a\nb", False), ("a\x7fb", False),
                                 ("a\u200bb", False), ("a\x85b", False)]):
        try:
            engine.create_job({"jobId": f"d{n}", "targets": target, "document": {}, "description": d})
            assert ok, d
        except ControlError as e:
            assert not ok and e.message == ("description must be 1 to 2028 characters, "
                                            "none of them a control character"), d
    with pytest.raises(ControlError, match="targetSelection must be SNAPSHOT or CONTINUOUS"):
        engine.create_job({"jobId": "t", "targets": target, "document": {}, "targetSelection": "ONCE"})


def test_names_with_a_newline_are_refused(engine):
    # a pattern's "$" also matches before a final newline: every name is matched to its very end
    engine.create_thing("t" * 128)
    for bad in ("t\n", "t" * 129, "", "a/b", 5, None):
        with pytest.raises(ControlError, match="thing"):
            engine.create_thing(bad)
        with pytest.raises(ControlError, match="group"):
            engine.create_thing_group(bad)
    engine.create_thing_group("g" * 128)
    with pytest.raises(ControlError):
        engine.create_job({"jobId": "j", "document": {}, "targets": ["arn:aws:iot:local:000000000000:thing/" + "t" * 128 + "\n"]})
    engine.create_job({"jobId": "j", "document": {}, "targets": ["arn:aws:iot:local:000000000000:thing/" + "t" * 128]})
    with pytest.raises(ControlError, match="reasonCode"):
        engine.cancel_job({"jobId": "j", "reasonCode": "USER_CANCEL\n"})
    engine.cancel_job({"jobId": "j", "reasonCode": "USER_CANCEL"})


def test_a_things_executions_and_a_groups_things(tmp_path):
    import json

    clock = Clock()
    db = Database(tmp_path / "cloud.db")
    e = JobsEngine(db, presign=lambda b, k, x: "https://x", minute=60.0, clock=clock)
    for thing in ("a", "b"):
        e.create_thing(thing)
    e.create_thing_group("g")
    e.add_thing_to_group("g", "b")
    e.add_thing_to_group("g", "a")
    assert e.list_things_in_group("g") == {"things": ["b", "a"]}  # in the order they joined
    with pytest.raises(ControlError, match="does not exist"):
        e.list_things_in_group("nope")
    arn = "arn:aws:iot:local:000000000000:thing/"
    e.create_job({"jobId": "j1", "targets": [arn + "a"], "document": {}})
    clock.now += 5
    e.create_job({"jobId": "j2", "targets": [arn + "a", arn + "b"], "document": {}})
    clock.now += 5
    e.handle("$aws/things/a/jobs/start-next", json.dumps({}).encode())
    got = e.list_job_executions_for_thing("a")["executionSummaries"]
    assert [(x["jobId"], x["jobExecutionSummary"]["status"]) for x in got] == [("j1", "IN_PROGRESS"), ("j2", "QUEUED")]
    assert got[0]["jobExecutionSummary"] == {"status": "IN_PROGRESS", "queuedAt": 1000.0, "lastUpdatedAt": 1010.0,
                                             "executionNumber": 1, "retryAttempt": 0, "startedAt": 1010.0}
    assert "startedAt" not in got[1]["jobExecutionSummary"] and got[1]["jobExecutionSummary"]["queuedAt"] == 1005.0
    assert [x["jobId"] for x in e.list_job_executions_for_thing("b")["executionSummaries"]] == ["j2"]
    assert e.list_job_executions_for_thing("nobody") == {"executionSummaries": []}
    db.close()


def test_the_clock_times_out_executions_and_releases_a_rollout_a_minute_apart(tmp_path):
    import json

    clock = Clock()
    sent: list[tuple[str, Any]] = []
    db = Database(tmp_path / "cloud.db")
    e = JobsEngine(db, presign=lambda b, k, x: "https://x", minute=60.0, clock=clock,
                   publish=lambda topic, payload: sent.append((topic, json.loads(payload))))
    arn = "arn:aws:iot:local:000000000000:thing/"
    for thing in ("a", "b", "c", "d"):
        e.create_thing(thing)
    e.create_job({"jobId": "t", "targets": [arn + "a"], "document": {},
                  "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]}})
    e.handle("$aws/things/a/jobs/start-next", json.dumps({"stepTimeoutInMinutes": 1}).encode())

    def status(job: str, thing: str) -> tuple[str, int]:
        x = e.describe_job_execution(job, thing)["execution"]
        return x["status"], x["executionNumber"]

    clock.now += 59.9
    e.tick()
    assert status("t", "a") == ("IN_PROGRESS", 1)
    clock.now += 0.2  # past the step's minute
    sent.clear()
    e.tick()
    assert status("t", "a") == ("QUEUED", 2)  # timed out, then retried once
    assert e.describe_job_execution("t", "a", 1)["execution"]["status"] == "TIMED_OUT"
    assert any(topic == "$aws/things/a/jobs/notify-next" for topic, _ in sent)
    e.handle("$aws/things/a/jobs/start-next", json.dumps({"stepTimeoutInMinutes": 1}).encode())
    clock.now += 61
    e.tick()
    assert status("t", "a") == ("TIMED_OUT", 2)  # no retry left
    assert e.describe_job("t")["job"]["status"] == "COMPLETED"

    # a rollout of one a minute: the next thing a whole minute after the last, not before
    e.create_job({"jobId": "r", "targets": [arn + "b", arn + "c", arn + "d"], "document": {},
                  "jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})
    queued = lambda: sorted(x["thingArn"][-1] for x in e.list_job_executions("r")["executionSummaries"])  # noqa: E731
    assert queued() == ["b"]
    clock.now += 59.9
    e.tick()
    assert queued() == ["b"]
    clock.now += 0.1
    e.tick()
    assert queued() == ["b", "c"]
    clock.now += 60
    e.tick()
    assert queued() == ["b", "c", "d"]
    db.close()


def test_targets_that_do_not_exist_and_jobs_that_complete_at_once(engine):
    arn = "arn:aws:iot:local:000000000000:"
    engine.create_thing("a")
    for targets, kind, text in [([arn + "thing/ghost"], "ResourceNotFoundException", "Thing ghost does not exist"),
                                ([arn + "thinggroup/none"], "ResourceNotFoundException", "none"),
                                (["thing/a"], "InvalidRequestException", "invalid target 'thing/a'"),
                                ([arn + "device/a"], "InvalidRequestException", "expected a thing or thing-group ARN"),
                                ([], "InvalidRequestException", "targets must be a non-empty list"),
                                ([5], "InvalidRequestException", "invalid target 5")]:
        with pytest.raises(ControlError, match=text) as e:
            engine.create_job({"jobId": "x", "targets": targets, "document": {}})
        assert e.value.kind == kind
    with pytest.raises(ControlError, match="Job execution x for thing a does not exist") as e:
        engine.describe_job_execution("x", "a")
    assert e.value.kind == "ResourceNotFoundException"
    # a group with nobody in it: nothing to wait for
    engine.create_thing_group("empty")
    engine.create_job({"jobId": "e", "targets": [arn + "thinggroup/empty"], "document": {}})
    assert engine.describe_job("e")["job"]["status"] == "COMPLETED"
    # its only execution cancelled: done
    engine.create_job({"jobId": "c", "targets": [arn + "thing/a"], "document": {}})
    assert engine.describe_job("c")["job"]["status"] == "IN_PROGRESS"
    engine.cancel_job_execution({"jobId": "c", "thingName": "a"})
    assert engine.describe_job("c")["job"]["status"] == "COMPLETED"
