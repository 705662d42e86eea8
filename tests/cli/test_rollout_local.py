"""`fota status` and `--watch` count every thing a job targets, on the local stand-in.

The stand-in runs in this process on a clock the test moves (tests/cli/standin.py), so that a
rollout rate of one thing a minute releases exactly one thing each time the test lets a minute
pass: what a status says at each step is then fixed, not a matter of timing.
"""

from __future__ import annotations

import json
import threading

import pytest

from fotatools import cli
from tests.cli.images import app_image
from tests.cli.standin import StandIn

KITCHENS = ["kitchen-1", "kitchen-2", "kitchen-3"]


@pytest.fixture
def cloud(tmp_path):
    s = StandIn(tmp_path / "home")
    yield s
    s.close()


@pytest.fixture
def kitchens(cloud, tmp_path):
    """Three things in the group `kitchens`, and a firmware image for them."""
    cloud.group("kitchens", cloud.things(*KITCHENS))
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("1.2.0"))
    return fw


def publish(cloud, capsys, fw, job_id: str, *options: str) -> None:
    code, out, err = cloud.fota(capsys, "publish", fw, "--group", "kitchens", "--rate", "1/min",
                                "--job-id", job_id, *options)
    assert code == 0, err


def states(report) -> dict[str, str]:
    return {t["thing"]: t["status"] for t in report["things"]}


def test_rate_limited_group_rollout_is_in_progress_until_the_last_thing(cloud, kitchens, capsys):
    publish(cloud, capsys, kitchens, "roll")
    code, st = cloud.status(capsys, "roll")
    assert code == 3 and st["result"] == "in_progress"
    assert st["total"] == 3 and st["counts"] == {"QUEUED": 1, "WAITING": 2}
    assert st["summary"] == "0/3 succeeded, 1 queued, 2 waiting (not yet queued at 1/min)"
    assert len(st["executions"]) == 1  # what AWS's own list would say
    for done, thing in enumerate(KITCHENS, 1):
        assert states(st)[thing] == "QUEUED"
        cloud.device(thing, "roll", "IN_PROGRESS")
        code, st = cloud.status(capsys, "roll")
        assert code == 3 and states(st)[thing] == "IN_PROGRESS"
        cloud.device(thing, "roll", "SUCCEEDED")
        code, st = cloud.status(capsys, "roll")
        if done < 3:
            # the bug this guards against: every execution that exists has succeeded
            assert all(e["status"] == "SUCCEEDED" for e in st["executions"])
            assert code == 3, st["summary"]
            assert st["counts"] == {"SUCCEEDED": done, "WAITING": 3 - done}
            assert st["summary"] == (f"{done}/3 succeeded, {3 - done} waiting "
                                     "(not yet queued at 1/min)")
            cloud.minute()
            code, st = cloud.status(capsys, "roll")
            assert code == 3
    assert code == 0 and st["result"] == "succeeded" and st["status"] == "COMPLETED"
    assert st["counts"] == {"SUCCEEDED": 3} and st["summary"] == "3/3 succeeded"
    code, out, _ = cloud.fota(capsys, "status", "roll")
    assert code == 0
    assert out.splitlines()[0] == "job roll: COMPLETED, version 1.2.0: 3/3 succeeded"
    assert out.splitlines()[-1] == "totals: 3 SUCCEEDED of 3; result: succeeded"


def test_the_text_names_the_things_not_queued_yet(cloud, kitchens, capsys):
    publish(cloud, capsys, kitchens, "text")
    code, out, _ = cloud.fota(capsys, "status", "text")
    assert code == 3
    lines = out.splitlines()
    assert lines[0] == ("job text: IN_PROGRESS, version 1.2.0: 0/3 succeeded, 1 queued, "
                        "2 waiting (not yet queued at 1/min)")
    assert lines[1].split() == ["kitchen-1", "QUEUED"]
    assert lines[2].split() == ["kitchen-2", "WAITING", "(not", "queued", "yet)"]
    assert lines[-1] == "totals: 1 QUEUED, 2 WAITING of 3; result: in_progress"


def test_watch_follows_the_rollout_to_the_last_thing(cloud, kitchens, capsys, monkeypatch):
    publish(cloud, capsys, kitchens, "watched")
    looks: list[dict] = []  # what the watcher saw, each time it looked
    seen = threading.Condition()
    snapshot = cli.snapshot

    def look(backend, job_id):
        progress, report = snapshot(backend, job_id)
        with seen:
            looks.append(report["counts"])
            seen.notify_all()
        return progress, report

    monkeypatch.setattr(cli, "snapshot", look)
    result: dict[str, int] = {}

    def watch() -> None:
        try:
            result["code"] = cli.main(["--home", str(cloud.home), "status", "watched", "--watch",
                                       "--interval", "0.01", "--timeout", "120", "--json"])
        finally:
            with seen:
                seen.notify_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for done, thing in enumerate(KITCHENS, 1):
            cloud.device(thing, "watched", "IN_PROGRESS", "SUCCEEDED")
            with seen:  # the watcher looks again (twice: once wholly after the update)
                n = len(looks)
                assert seen.wait_for(lambda: len(looks) >= n + 2 or not watcher.is_alive(), 60)
            if done < 3:
                assert watcher.is_alive(), looks[-1]
                assert looks[-1] == {"SUCCEEDED": done, "WAITING": 3 - done}
            cloud.minute()
    finally:
        watcher.join(60)
    report = json.loads(capsys.readouterr().out)
    assert result["code"] == 0
    assert report["counts"] == {"SUCCEEDED": 3} and report["total"] == 3


def test_abort_spares_the_things_not_queued(cloud, kitchens, capsys):
    publish(cloud, capsys, kitchens, "aborted", "--abort-percent", "50")
    cloud.device("kitchen-1", "aborted", "IN_PROGRESS", "FAILED")
    code, st = cloud.status(capsys, "aborted")
    assert code == 1 and st["result"] == "failed"
    assert (st["status"], st["reason_code"]) == ("CANCELED", "ABORTED")
    assert st["counts"] == {"FAILED": 1, "SPARED": 2}
    assert st["summary"] == "0/3 succeeded, 1 failed, 2 spared (canceled before they started)"
    code, out, _ = cloud.fota(capsys, "status", "aborted")
    assert out.splitlines()[0].startswith("job aborted: CANCELED (ABORTED), version 1.2.0: ")
    assert "kitchen-3  SPARED       (never queued)" in out


def test_abort_after_a_success_counts_it_and_the_spared(cloud, kitchens, capsys):
    publish(cloud, capsys, kitchens, "half", "--abort-percent", "50", "--abort-min", "2")
    cloud.device("kitchen-1", "half", "IN_PROGRESS", "SUCCEEDED")
    cloud.minute()
    cloud.device("kitchen-2", "half", "IN_PROGRESS", "FAILED")  # 1 of 2 executed: 50 %
    code, st = cloud.status(capsys, "half")
    assert code == 1 and st["status"] == "CANCELED"
    assert states(st) == {"kitchen-1": "SUCCEEDED", "kitchen-2": "FAILED",
                          "kitchen-3": "SPARED"}
    assert st["summary"] == "1/3 succeeded, 1 failed, 1 spared (canceled before it started)"


def test_cancel_spares_the_queued_and_the_waiting(cloud, kitchens, capsys):
    publish(cloud, capsys, kitchens, "stopped")
    cloud.device("kitchen-1", "stopped", "IN_PROGRESS", "SUCCEEDED")
    cloud.minute()  # kitchen-2 is queued, kitchen-3 still waits
    code, _, err = cloud.fota(capsys, "cancel", "stopped")
    assert code == 0, err
    code, st = cloud.status(capsys, "stopped")
    assert code == 1
    assert st["summary"] == "1/3 succeeded, 2 spared (canceled before they started)"
    code, out, _ = cloud.fota(capsys, "status", "stopped")
    assert "kitchen-2  SPARED       (canceled while QUEUED)" in out
    assert "kitchen-3  SPARED       (never queued)" in out


def test_cancel_leaves_a_running_thing_to_finish(cloud, kitchens, capsys):
    """A cancel without --force lets an IN_PROGRESS execution go on: the job is CANCELED but
    not over until that thing ends, and one stopped while it ran is no spared thing."""
    publish(cloud, capsys, kitchens, "running")
    cloud.device("kitchen-1", "running", "IN_PROGRESS")
    assert cloud.fota(capsys, "cancel", "running")[0] == 0
    code, st = cloud.status(capsys, "running")
    assert code == 3 and st["status"] == "CANCELED"
    assert st["counts"] == {"SPARED": 2, "IN_PROGRESS": 1}
    assert cloud.fota(capsys, "cancel", "running", "--force")[0] == 0
    code, st = cloud.status(capsys, "running")
    assert code == 1 and st["counts"] == {"CANCELED": 1, "SPARED": 2}
    assert st["summary"] == ("0/3 succeeded, 1 canceled while running, "
                             "2 spared (canceled before they started)")


def test_the_group_as_the_job_saw_it(cloud, kitchens, capsys):
    """A snapshot job targets the members its group had when it was created: a thing that
    joins later is no target, one that leaves stays one."""
    publish(cloud, capsys, kitchens, "snap")
    cloud.things("kitchen-4")
    cloud.engine.add_thing_to_group("kitchens", "kitchen-4")
    cloud.engine.remove_thing_from_group("kitchens", "kitchen-3")
    code, st = cloud.status(capsys, "snap")
    assert code == 3 and sorted(states(st)) == KITCHENS
    for thing in KITCHENS:
        cloud.device(thing, "snap", "SUCCEEDED")
        cloud.minute()
    code, st = cloud.status(capsys, "snap")
    assert code == 0 and st["counts"] == {"SUCCEEDED": 3}


def test_a_job_without_targets_is_no_success(cloud, capsys, tmp_path):
    cloud.group("empty", [])
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("1.2.0"))
    assert cloud.fota(capsys, "publish", fw, "--group", "empty", "--job-id", "none")[0] == 0
    code, st = cloud.status(capsys, "none")
    assert (code, st["status"], st["total"]) == (1, "COMPLETED", 0)
    assert st["summary"] == "0/0 succeeded"


# -- names that do not exist -------------------------------------------------------------------
def test_a_mistyped_job_exits_2_with_the_jobs(cloud, kitchens, capsys):
    publish(cloud, capsys, kitchens, "fota-1-2-0")
    for cmd in (["status", "fota-1-2-1"], ["status", "fota-1-2-1", "--watch"],
                ["cancel", "fota-1-2-1"]):
        code, out, err = cloud.fota(capsys, *cmd)
        assert code == 2 and not out
        assert err == ("fota: error: no job 'fota-1-2-1' on the local cloud; the jobs are: "
                       "fota-1-2-0\n")


def test_a_mistyped_thing_or_group_exits_2_before_anything_is_uploaded(cloud, kitchens, capsys):
    code, _, err = cloud.fota(capsys, "publish", kitchens, "--thing", "kitchen-4")
    assert code == 2
    assert err == ("fota: error: no thing 'kitchen-4' on the local cloud; the things are: "
                   "kitchen-1, kitchen-2, kitchen-3\n")
    code, _, err = cloud.fota(capsys, "publish", kitchens, "--group", "kitchen")
    assert code == 2
    assert err == "fota: error: no group 'kitchen' on the local cloud; the groups are: kitchens\n"
    assert not list((cloud.home / "cloud" / "store").rglob("*.bin"))
    code, _, err = cloud.fota(capsys, "group", "add", "kitchens", "kitchen-1", "kitchen-9")
    assert code == 2 and "no thing 'kitchen-9'" in err
    code, _, err = cloud.fota(capsys, "group", "add", "bathrooms", "kitchen-1")
    assert code == 2 and "no group 'bathrooms'" in err and "the groups are: kitchens" in err
    assert cloud.engine.list_thing_groups()["thingGroups"] == [
        {"groupName": "kitchens", "groupArn": "arn:aws:iot:local:000000000000:thinggroup/kitchens"}]


@pytest.mark.parametrize("count,named,said", [
    (10, "sensor-07x", "the things are: sensor-00, sensor-01, sensor-02, sensor-03, sensor-04, "
                       "sensor-05, sensor-06, sensor-07, sensor-08, sensor-09"),
    (11, "sensor-07x", "the nearest of 11 things: sensor-07"),
    (11, "zzz", "nor any near it among 11 things"),
])
def test_many_names_are_answered_with_the_nearest(cloud, capsys, tmp_path, count, named, said):
    cloud.things(*[f"sensor-{i:02d}" for i in range(count)])
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("1.2.0"))
    code, _, err = cloud.fota(capsys, "publish", fw, "--thing", named)
    assert code == 2 and said in err and err.count("\n") == 1, err


def test_no_jobs_at_all(cloud, capsys):
    code, _, err = cloud.fota(capsys, "status", "job-1")
    assert code == 2 and err == "fota: error: no job 'job-1' on the local cloud: there are no jobs\n"


def test_an_older_running_stand_in_is_named(cloud, kitchens, capsys):
    """A stand-in started by an older fota has no ListJobTargets: status says to restart it
    rather than count only the executions."""
    publish(cloud, capsys, kitchens, "old")
    del cloud.api.ops["ListJobTargets"]
    code, out, err = cloud.fota(capsys, "status", "old")
    assert code == 1 and not out
    assert err == (f"fota: error: the local cloud running on {cloud.home} is older than this "
                   "fota (it has no ListJobTargets): restart it with `fota cloud stop` and "
                   "`fota cloud start`\n")
