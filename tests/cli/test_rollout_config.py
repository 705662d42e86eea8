"""`fota publish` with AWS IoT's rollout configuration, carried out by the stand-in as AWS
documents it, on a clock the test moves (tests/cli/standin.py): an exponential rate
(jobExecutionsRolloutConfig.exponentialRate, capped by maximumPerMinute), the in-progress timeout
(timeoutConfig: an execution still IN_PROGRESS then is TIMED_OUT), and a canary first (two jobs,
see fotatools.canary), with `status` counting every thing of both stages."""

from __future__ import annotations

import json

import pytest

from tests.cli.images import app_image
from tests.cli.standin import MINUTE, StandIn

FLEET = [f"kitchen-{i}" for i in range(1, 9)]


@pytest.fixture
def cloud(tmp_path):
    s = StandIn(tmp_path / "home")
    yield s
    s.close()


@pytest.fixture
def fw(cloud, tmp_path):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("1.2.0"))
    return fw


def fleet(cloud, n: int) -> list[str]:
    things = cloud.things(*FLEET[:n])
    cloud.group("kitchens", things)
    return things


def publish(cloud, capsys, fw, job_id: str, *options: str) -> dict:
    code, out, err = cloud.fota(capsys, "publish", fw, "--job-id", job_id, "--json", *options)
    assert code == 0, err
    return json.loads(out)


def queued(cloud, job_id: str) -> int:
    return len(cloud.db.executions_for_job(job_id))


# -- exponential rate ----------------------------------------------------------------------------
@pytest.mark.parametrize("options,per_minute", [
    # 1 a minute, doubled after every thing notified: 1, 2, 4, then the last one
    (["--rate-increase-on", "notified"], [1, 3, 7, 8]),
    # ... up to --rate 3 a minute (maximumPerMinute)
    (["--rate-increase-on", "notified", "--rate", "3/min"], [1, 3, 6, 8]),
    # x1.5: 1, 1.5 (1), 2.25 (2), 3.375 (3), 5.06 (5): one digit after the decimal point
    (["--rate-increase-on", "notified", "--rate-factor", "1.5"], [1, 2, 4, 7, 8]),
])
def test_an_exponential_rate_grows_as_things_are_notified(cloud, fw, capsys, options, per_minute):
    fleet(cloud, 8)
    out = publish(cloud, capsys, fw, "expo", "--group", "kitchens", "--rate-base", "1/min",
                  *options)
    assert out["status"] == "IN_PROGRESS"
    config = cloud.engine.describe_job("expo")["job"]["jobExecutionsRolloutConfig"]
    assert config["exponentialRate"]["rateIncreaseCriteria"] == {"numberOfNotifiedThings": 1}
    if "--rate" in options:
        code, st = cloud.status(capsys, "expo")
        assert st["summary"].endswith("(not yet queued at from 1/min, x2.0 up to 3/min)")
    seen = []
    for _ in per_minute:
        seen.append(queued(cloud, "expo"))
        cloud.minute()
    assert seen == per_minute


def test_a_rate_grows_after_things_succeeded(cloud, fw, capsys):
    """numberOfSucceededThings: the rate doubles once two more things SUCCEEDED, not before
    (things notified but not done do not count)."""
    fleet(cloud, 6)
    publish(cloud, capsys, fw, "grow", "--group", "kitchens", "--rate-base", "1/min",
            "--rate-increase-after", "2")
    assert queued(cloud, "grow") == 1
    cloud.minute()
    assert queued(cloud, "grow") == 2  # nothing has succeeded: still 1 a minute
    cloud.device("kitchen-1", "grow", "SUCCEEDED")
    cloud.minute()
    assert queued(cloud, "grow") == 3  # one succeeded: still 1 a minute
    cloud.device("kitchen-2", "grow", "SUCCEEDED")
    cloud.minute()
    assert queued(cloud, "grow") == 5  # two succeeded: 2 a minute
    code, st = cloud.status(capsys, "grow")
    assert code == 3 and st["counts"] == {"SUCCEEDED": 2, "QUEUED": 3, "WAITING": 1}
    assert st["summary"].endswith("1 waiting (not yet queued at from 1/min, x2.0)")


@pytest.mark.parametrize("options,error", [
    (["--rate-base", "0/min"], "bad --rate-base '0/min': things per minute, 1..1000"),
    (["--rate-base", "1001"], "bad --rate-base '1001'"),
    (["--rate-base", "1", "--rate-factor", "1.0"], "bad --rate-factor 1.0: 1.1..5"),
    (["--rate-base", "1", "--rate-factor", "5.1"], "bad --rate-factor 5.1"),
    (["--rate-base", "1", "--rate-factor", "1.55"], "at most one digit after the decimal"),
    (["--rate-base", "1", "--rate-increase-after", "0"], "bad --rate-increase-after 0"),
    (["--rate-base", "5", "--rate", "4/min"], "--rate 4/min is below --rate-base 5"),
    (["--rate-factor", "2"], "--rate-factor goes with --rate-base"),
    (["--rate-increase-on", "notified"], "--rate-increase-on goes with --rate-base"),
    (["--timeout", "0"], "bad --timeout 0: minutes, 1..10080"),
    (["--timeout", "10081"], "bad --timeout 10081"),
    (["--canary", "0"], "bad --canary 0: 1..100 things"),
    (["--canary", "101"], "bad --canary 101"),
    (["--canary", "1", "--canary-group", "kitchens"], "exclude each other"),
    (["--canary", "3"], "the canary (3 things) is the whole rollout (3 things)"),
    (["--canary-group", "kitchen"], "no group 'kitchen' on the local cloud; the groups are: "
                                    "kitchens"),
    (["--canary", "1", "--job-id", "j" * 60], "at most 59 characters"),
])
def test_bad_rollout_options_exit_2_before_a_job(cloud, fw, capsys, options, error):
    fleet(cloud, 3)
    code, out, err = cloud.fota(capsys, "publish", fw, "--group", "kitchens", *options)
    assert code == 2 and not out and error in err, err
    assert err.startswith("fota: error: ") and err.count("\n") == 1
    assert cloud.engine.list_jobs()["jobs"] == []


@pytest.mark.parametrize("options", [
    ["--rate-base", "1000", "--rate-factor", "5", "--rate-increase-after", "1"],
    ["--rate-base", "1", "--rate-factor", "1.1", "--rate", "1/min"],
    ["--timeout", "1"], ["--timeout", "10080"], ["--canary", "2"], ["--canary", "1"],
])
def test_the_bounds_are_taken(cloud, fw, capsys, options):
    fleet(cloud, 3)
    publish(cloud, capsys, fw, "bounds", "--group", "kitchens", *options)


# -- in-progress timeout -------------------------------------------------------------------------
def test_an_execution_still_in_progress_at_the_timeout_is_timed_out(cloud, fw, capsys):
    fleet(cloud, 2)
    publish(cloud, capsys, fw, "slow", "--group", "kitchens", "--timeout", "2")
    assert cloud.engine.describe_job("slow")["job"]["timeoutConfig"] == {
        "inProgressTimeoutInMinutes": 2}
    cloud.device("kitchen-1", "slow", "IN_PROGRESS")
    cloud.device("kitchen-2", "slow", "IN_PROGRESS")
    cloud.clock.now += 2 * MINUTE - 1  # just inside
    cloud.engine.tick()
    cloud.device("kitchen-2", "slow", "SUCCEEDED")
    code, st = cloud.status(capsys, "slow")
    assert code == 3 and st["counts"] == {"SUCCEEDED": 1, "IN_PROGRESS": 1}
    cloud.clock.now += 1  # the timeout
    cloud.engine.tick()
    code, st = cloud.status(capsys, "slow")
    assert code == 1 and st["status"] == "COMPLETED"
    assert st["counts"] == {"SUCCEEDED": 1, "TIMED_OUT": 1}
    assert st["summary"] == "1/2 succeeded, 1 timed out"
    # the device's late word changes nothing
    cloud.device("kitchen-1", "slow", "SUCCEEDED")
    assert cloud.execution("slow", "kitchen-1")["status"] == "TIMED_OUT"


# -- canary --------------------------------------------------------------------------------------
def stages(st) -> dict[str, tuple[str, dict]]:
    return {s["stage"]: (s["status"], s["counts"]) for s in st["stages"]}


def test_a_canary_goes_first_and_the_rest_after_it_succeeded(cloud, fw, capsys):
    fleet(cloud, 4)
    out = publish(cloud, capsys, fw, "canary", "--group", "kitchens", "--canary", "1",
                  "--rate", "2/min", "--abort-percent", "50")
    assert out["canary"] == {"job_id": "canary", "things": ["kitchen-1"],
                             "targets": ["arn:aws:iot:local:000000000000:thing/kitchen-1"],
                             "rest_job_id": "canary-rest",
                             "rest_things": ["kitchen-2", "kitchen-3", "kitchen-4"]}
    job = cloud.engine.describe_job("canary")["job"]
    assert "jobExecutionsRolloutConfig" not in job and "abortConfig" not in job
    code, st = cloud.status(capsys, "canary")
    assert code == 3 and st["counts"] == {"QUEUED": 1, "WAITING": 3}
    assert stages(st) == {"canary": ("IN_PROGRESS", {"QUEUED": 1}),
                          "rest": ("WAITING", {"WAITING": 3})}
    cloud.device("kitchen-1", "canary", "IN_PROGRESS")
    code, st = cloud.status(capsys, "canary")
    assert code == 3 and not st["promoted"]
    assert cloud.engine.list_jobs()["jobs"][0]["jobId"] == "canary"
    assert len(cloud.engine.list_jobs()["jobs"]) == 1  # the rest waits for the canary
    cloud.device("kitchen-1", "canary", "SUCCEEDED")
    code, st = cloud.status(capsys, "canary")
    assert st["promoted"] and code == 3
    assert st["counts"] == {"SUCCEEDED": 1, "QUEUED": 2, "WAITING": 1}
    rest = cloud.engine.describe_job("canary-rest")["job"]
    assert rest["targets"] == [f"arn:aws:iot:local:000000000000:thing/kitchen-{i}"
                               for i in (2, 3, 4)]
    assert rest["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 2}
    assert rest["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 50
    assert json.loads(cloud.engine.get_job_document("canary-rest")["document"]) == \
        json.loads(cloud.engine.get_job_document("canary")["document"])
    code, out, _ = cloud.fota(capsys, "status", "canary")
    lines = out.splitlines()
    assert lines[1] == "  canary: job canary, COMPLETED: 1/1 succeeded"
    assert lines[2] == ("  rest: job canary-rest, IN_PROGRESS: 0/3 succeeded, 2 queued, "
                        "1 waiting (not yet queued at 2/min)")
    for thing in ("kitchen-2", "kitchen-3"):
        cloud.device(thing, "canary-rest", "SUCCEEDED")
    cloud.minute()
    code, st = cloud.status(capsys, "canary")
    assert code == 3 and not st["promoted"]
    cloud.device("kitchen-4", "canary-rest", "SUCCEEDED")
    code, st = cloud.status(capsys, "canary")
    assert code == 0 and st["counts"] == {"SUCCEEDED": 4} and st["result"] == "succeeded"
    assert {t["thing"]: t["stage"] for t in st["things"]} == {
        "kitchen-1": "canary", "kitchen-2": "rest", "kitchen-3": "rest", "kitchen-4": "rest"}


@pytest.mark.parametrize("outcome", ["FAILED", "REJECTED", "TIMED_OUT", "cancel"])
def test_a_canary_that_does_not_succeed_spares_the_rest(cloud, fw, capsys, outcome):
    fleet(cloud, 3)
    publish(cloud, capsys, fw, "bad", "--group", "kitchens", "--canary", "1", "--timeout", "1")
    cloud.device("kitchen-1", "bad", "IN_PROGRESS")
    if outcome == "TIMED_OUT":
        cloud.minute()
    elif outcome == "cancel":
        assert cloud.fota(capsys, "cancel", "bad", "--force")[0] == 0
    else:
        cloud.device("kitchen-1", "bad", outcome)
    code, st = cloud.status(capsys, "bad")
    assert code == 1 and st["result"] == "failed"
    state = {"cancel": "CANCELED"}.get(outcome, outcome)
    assert st["counts"] == {state: 1, "SPARED": 2}
    assert stages(st)["rest"] == ("NOT_CREATED", {"SPARED": 2})
    assert [j["jobId"] for j in cloud.engine.list_jobs()["jobs"]] == ["bad"]
    code, out, _ = cloud.fota(capsys, "status", "bad")
    assert "rest    kitchen-3  SPARED       (the canary did not succeed)" in out


def test_a_canary_group(cloud, fw, capsys):
    fleet(cloud, 3)
    cloud.things("bench-1")
    cloud.group("bench", ["bench-1", "kitchen-3"])
    out = publish(cloud, capsys, fw, "cg", "--group", "kitchens", "--canary-group", "bench")
    assert out["canary"]["targets"] == ["arn:aws:iot:local:000000000000:thinggroup/bench"]
    assert out["canary"]["rest_things"] == ["kitchen-1", "kitchen-2"]
    for thing in ("bench-1", "kitchen-3"):
        cloud.device(thing, "cg", "SUCCEEDED")
    code, st = cloud.status(capsys, "cg")
    assert code == 3 and st["promoted"]
    assert st["counts"] == {"SUCCEEDED": 2, "QUEUED": 2}
    assert [t for t in st["things"] if t["stage"] == "rest"] == [
        {"thing": t, "status": "QUEUED", "execution_status": "QUEUED", "stage": "rest"}
        for t in ("kitchen-1", "kitchen-2")]


def test_watch_follows_a_canary_to_the_end(cloud, fw, capsys, monkeypatch):
    """`publish --watch` creates the rest once the canary succeeded and exits 0 only when
    every thing of both stages did."""
    from fotatools import cli

    fleet(cloud, 3)
    looks = {"n": 0}
    snapshot = cli.snapshot

    def look(backend, job_id):  # the devices answer between two looks
        looks["n"] += 1
        progress, report = snapshot(backend, job_id)
        for t in report["things"]:
            if t["status"] == "QUEUED":
                job = job_id + ("-rest" if t.get("stage") == "rest" else "")
                cloud.device(t["thing"], job, "IN_PROGRESS", "SUCCEEDED")
        return progress, report

    monkeypatch.setattr(cli, "snapshot", look)
    code, out, err = cloud.fota(capsys, "publish", fw, "--group", "kitchens", "--canary", "1",
                                "--job-id", "w", "--watch", "--interval", "0.01",
                                "--watch-timeout", "60", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["counts"] == {"SUCCEEDED": 3} and looks["n"] == 3


# -- the stand-in's CreateJob, as AWS's API reference bounds it -------------------------------------
@pytest.mark.parametrize("factor,ok", [(1.1, True), (5, True), (1.5, True), (1.0, False),
                                       (5.1, False), (1.55, False)])
def test_the_stand_in_takes_an_increment_factor_of_one_decimal(cloud, factor, ok):
    from fotatools.cloud.jobs import ControlError

    cloud.things("t")
    params = {"jobId": "f", "targets": ["arn:aws:iot:local:000000000000:thing/t"],
              "document": "{}", "jobExecutionsRolloutConfig": {"exponentialRate": {
                  "baseRatePerMinute": 1, "incrementFactor": factor,
                  "rateIncreaseCriteria": {"numberOfSucceededThings": 1}}}}
    if ok:
        cloud.engine.create_job(params)
    else:
        with pytest.raises(ControlError, match="incrementFactor"):
            cloud.engine.create_job(params)


def test_maximum_per_minute_bounds_the_base_rate_too(cloud):
    cloud.things(*FLEET[:4])
    cloud.engine.create_job({
        "jobId": "cap", "targets": [f"arn:aws:iot:local:000000000000:thing/{t}" for t in FLEET[:4]],
        "document": "{}", "jobExecutionsRolloutConfig": {"maximumPerMinute": 2, "exponentialRate": {
            "baseRatePerMinute": 3, "incrementFactor": 2,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 100}}}})
    assert queued(cloud, "cap") == 2


def test_a_mistyped_target_of_a_rollback_exits_2_before_the_release_is_made(cloud, capsys,
                                                                          tmp_path):
    fleet(cloud, 2)
    old = tmp_path / "old.bin"
    old.write_bytes(app_image("1.0.0"))
    for target, said in ((["--thing", "kitchen-9"], "no thing 'kitchen-9' on the local cloud; "
                                                    "the things are: kitchen-1, kitchen-2"),
                         (["--group", "kitchen"], "no group 'kitchen' on the local cloud; the "
                                                  "groups are: kitchens")):
        code, out, err = cloud.fota(capsys, "rollback", old, "--version", "1.1.0", "--out",
                                    tmp_path / "rb", *target)
        assert code == 2 and not out and err == f"fota: error: {said}\n"
        assert not (tmp_path / "rb").exists()
    code, out, err = cloud.fota(capsys, "rollback", old, "--version", "1.1.0", "--out",
                                tmp_path / "rb", "--group", "kitchens", "--job-id", "back")
    assert code == 0, err
    assert "release: " in out and "job back: micropython 1.1.0 -> group kitchens" in out
    code, st = cloud.status(capsys, "back")
    assert code == 3 and st["version"] == "1.1.0" and st["counts"] == {"QUEUED": 2}
