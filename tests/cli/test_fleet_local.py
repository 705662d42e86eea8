"""`fota things`, `fota history` and `fota jobs` on the local stand-in (run in this process on a
clock the test moves, tests/cli/standin.py): what the boards report to their shadows and what
the Jobs API keeps of their executions."""

from __future__ import annotations

import json

import pytest

from fotatools import fleet
from fotatools.cloud.client import LocalBackend
from tests.cli.images import app_image
from tests.cli.standin import StandIn

KITCHENS = ["kitchen-1", "kitchen-2", "kitchen-3"]


@pytest.fixture
def cloud(tmp_path):
    s = StandIn(tmp_path / "home")
    s.api.shadows.clock = s.clock
    s.group("kitchens", s.things(*KITCHENS))
    s.things("hall-1")
    yield s
    s.close()


def report(cloud: StandIn, thing: str, reported: dict) -> None:
    """What lib/fota/shadow.py publishes, handed to the shadow service as the broker would."""
    cloud.api.shadows.handle(f"$aws/things/{thing}/shadow/update",
                             json.dumps({"state": {"reported": reported}}).encode())


def job(job_id: str, status: str, reason: str | None = None, step: str = "confirm") -> dict:
    return {"id": job_id, "status": status, "reason": reason, "step": step}


def test_things_lists_each_thing_from_its_shadow(cloud, capsys):
    report(cloud, "kitchen-1", {"firmware": "1.0.0", "app": "none"})
    cloud.clock.now += 30
    report(cloud, "kitchen-1", {"firmware": "1.0.1", "job": job("fw-1", "SUCCEEDED")})
    report(cloud, "kitchen-2", {"firmware": "1.0.0", "app": "2.1.0", "files": {"file_1": "3.0.0"},
                                "job": job("fw-1", "FAILED", "rolled back: running 1.0.0", "rollback")})
    code, out, err = cloud.fota(capsys, "things", "--json")
    assert code == 0, err
    got = {t["thing"]: t for t in json.loads(out)}
    assert sorted(got) == ["hall-1"] + KITCHENS
    k1 = got["kitchen-1"]
    assert (k1["firmware"], k1["application"], k1["job_id"], k1["job_status"]) == ("1.0.1", "none", "fw-1", "SUCCEEDED")
    assert k1["reason"] is None and k1["shadow_version"] == 2
    assert k1["reported_at"] == "2025-06-15T15:07:10Z"  # the newer of its two reports
    k2 = got["kitchen-2"]
    assert k2["files"] == {"file_1": "3.0.0"} and k2["application"] == "2.1.0"
    assert (k2["job_status"], k2["step"], k2["reason"]) == ("FAILED", "rollback", "rolled back: running 1.0.0")
    assert got["hall-1"]["shadow_version"] is None and got["hall-1"]["firmware"] is None

    code, out, err = cloud.fota(capsys, "things")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["THING", "FIRMWARE", "APPLICATION", "FILES", "LAST",
                                              "JOB", "STATUS", "STEP", "REASON", "REPORTED"]
    assert lines[1].split() == ["hall-1", "-", "-", "-", "-", "-", "-", "-", "never", "reported"]
    assert "file_1=3.0.0" in lines[3] and "rolled back: running 1.0.0" in lines[3]


def test_things_by_group_and_version(cloud, capsys):
    report(cloud, "kitchen-1", {"firmware": "1.0.1", "app": "2.0.0"})
    report(cloud, "kitchen-3", {"firmware": "1.0.0", "app": "1.0.1"})
    report(cloud, "hall-1", {"firmware": "1.0.1"})
    backend = LocalBackend(cloud.home)
    assert [t.thing for t in fleet.things(backend, group="kitchens")] == KITCHENS
    assert [t.thing for t in fleet.things(backend, version="1.0.1")] == ["hall-1", "kitchen-1", "kitchen-3"]
    code, out, _ = cloud.fota(capsys, "things", "--group", "kitchens", "--version", "1.0.1", "--json")
    assert code == 0 and [t["thing"] for t in json.loads(out)] == ["kitchen-1", "kitchen-3"]
    code, out, _ = cloud.fota(capsys, "things", "--version", "9.9.9")
    assert code == 0 and out.strip() == "no things run version 9.9.9"


def test_a_mistyped_group_or_thing_exits_2_with_the_names_that_exist(cloud, capsys):
    code, out, err = cloud.fota(capsys, "things", "--group", "kitchen")
    assert code == 2 and out == ""
    assert err.strip() == "fota: error: no group 'kitchen' on the local cloud; the groups are: kitchens"
    code, out, err = cloud.fota(capsys, "history", "kitchen-4")
    assert code == 2 and out == ""
    assert err.strip() == ("fota: error: no thing 'kitchen-4' on the local cloud; the things are: "
                           "hall-1, kitchen-1, kitchen-2, kitchen-3")
    code, _, err = cloud.fota(capsys, "history", "bad/name")
    assert code == 2 and "bad thing name" in err


def test_history_lists_a_things_executions_newest_first_and_jobs_their_counts(cloud, capsys, tmp_path):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("1.2.0"))
    for job_id in ("first", "second"):
        code, _, err = cloud.fota(capsys, "publish", fw, "--group", "kitchens", "--job-id", job_id)
        assert code == 0, err
        cloud.clock.now += 60
    cloud.engine.handle("$aws/things/kitchen-1/jobs/first/update", json.dumps(
        {"status": "FAILED", "statusDetails": {"step": "download", "reason": "HTTP 403"}}).encode())
    cloud.clock.now += 60
    cloud.device("kitchen-1", "second", "IN_PROGRESS", "SUCCEEDED")
    cloud.device("kitchen-2", "first", "REJECTED")

    code, out, err = cloud.fota(capsys, "history", "kitchen-1", "--json")
    assert code == 0, err
    h = json.loads(out)
    assert [(e["job_id"], e["status"]) for e in h] == [("second", "SUCCEEDED"), ("first", "FAILED")]
    assert (h[1]["step"], h[1]["reason"]) == ("download", "HTTP 403")
    assert h[0]["started_at"] is not None and h[1]["queued_at"] == "2025-06-15T15:06:40Z"
    code, out, _ = cloud.fota(capsys, "history", "kitchen-1")
    rows = out.splitlines()
    assert rows[0].split()[:5] == ["JOB", "#", "STATUS", "STEP", "REASON"]
    assert rows[1].split()[:3] == ["second", "1", "SUCCEEDED"] and "HTTP 403" in rows[2]
    code, out, _ = cloud.fota(capsys, "history", "hall-1")
    assert code == 0 and out.strip() == "thing hall-1: no job executions"

    code, out, err = cloud.fota(capsys, "jobs", "--json")
    assert code == 0, err
    js = json.loads(out)
    assert [j["job_id"] for j in js] == ["second", "first"]
    assert js[0]["counts"] == {"SUCCEEDED": 1, "QUEUED": 2} and js[0]["total"] == 3
    assert js[1]["counts"] == {"FAILED": 1, "REJECTED": 1, "QUEUED": 1}
    code, out, _ = cloud.fota(capsys, "jobs")
    rows = out.splitlines()
    assert rows[0].split() == ["JOB", "STATUS", "CREATED", "THINGS"]
    assert rows[1].startswith("second") and "1 SUCCEEDED, 2 QUEUED" in rows[1]


def test_no_jobs(cloud, capsys):
    code, out, _ = cloud.fota(capsys, "jobs")
    assert code == 0 and out.strip() == "no jobs"
    code, out, _ = cloud.fota(capsys, "jobs", "--json")
    assert code == 0 and json.loads(out) == []
