"""An account with more jobs than the dashboard shows: the jobs are listed from ListJobs'
summaries (status and times, no call per job), and only the newest `max_jobs` are described
(DescribeJob and the rest); one that drops out of the newest is read no more. The same listing
lets `fota jobs --limit N` describe only the jobs it prints. On the local stand-in, on AWS
through moto, and on AWS's API model through botocore's Stubber."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from fotatools import fleet
from fotatools.aws import AwsBackend
from fotatools.backend import ListedJob, Rollout
from fotatools.cloud.client import LocalBackend
from fotatools.dashboard import Watcher
from tests.cli.conftest import REGION, ROLE_ARN, unique
from tests.cli.standin import StandIn

DOC = {"operation": "fota", "version": "1.0.1"}
# created in this order: by name the newest three would be e, d, c; by time they are d, b, e
CREATED = ["c", "a", "e", "b", "d"]
NEWEST = ["d", "b", "e"]


# -- the local stand-in ------------------------------------------------------------------------
@pytest.fixture
def cloud(tmp_path):
    s = StandIn(tmp_path / "home")
    s.api.shadows.clock = s.clock
    s.things("hall-1")
    yield s
    s.close()


def local_jobs(cloud: StandIn, *job_ids: str) -> None:
    backend = LocalBackend(cloud.home)
    arn = backend.thing_arn("hall-1")
    for job_id in job_ids:
        backend.create_job(job_id, [arn], DOC, Rollout())
        cloud.clock.now += 60


def counting(backend: LocalBackend, monkeypatch) -> list[tuple[str, str | None]]:
    """Every control-API call the backend makes: (operation, its jobId)."""
    calls: list[tuple[str, str | None]] = []
    call = backend.call

    def counted(op: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        calls.append((op, (params or {}).get("jobId")))
        return call(op, params, **kw)

    monkeypatch.setattr(backend, "call", counted)
    return calls


def described(calls: list[tuple[str, str | None]]) -> list[str]:
    return [job_id for op, job_id in calls if op == "DescribeJob"]


def shown(watcher: Watcher) -> list[str]:
    return [j["job_id"] for j in json.loads(watcher.json())["jobs"]]


def test_the_stand_ins_listing_is_newest_first_with_status_and_times(cloud, monkeypatch):
    local_jobs(cloud, *CREATED)
    backend = LocalBackend(cloud.home)
    calls = counting(backend, monkeypatch)
    listed = backend.listed_jobs()
    assert [c[0] for c in calls] == ["ListJobs"]  # one call, none a job
    assert [j.job_id for j in listed] == list(reversed(CREATED))
    start = cloud.clock.now - 60 * len(CREATED)
    assert listed[-1] == ListedJob("c", "IN_PROGRESS", start, start, None)
    assert listed[0].created_at == start + 60 * (len(CREATED) - 1)


def test_the_dashboard_describes_only_the_newest_jobs_on_the_stand_in(cloud, monkeypatch):
    local_jobs(cloud, *CREATED)
    backend = LocalBackend(cloud.home)
    calls = counting(backend, monkeypatch)
    watcher = Watcher(backend, max_jobs=3, clock=cloud.clock)
    watcher.sample()
    assert sorted(described(calls)) == sorted(NEWEST)  # each once, the other two never
    assert shown(watcher) == NEWEST
    assert sorted(watcher.jobs) == sorted(NEWEST)

    # a newer job: the oldest of the three drops out and is read no more
    local_jobs(cloud, "f")
    calls.clear()
    watcher.sample()
    assert shown(watcher) == ["f", "d", "b"]
    assert sorted(described(calls)) == ["b", "d", "f"]
    assert "e" not in watcher.jobs

    # a job that ended and whose targets no longer move is not read again (as before)
    cloud.device("hall-1", "b", "IN_PROGRESS", "SUCCEEDED")
    watcher.sample()
    assert watcher.jobs["b"].settled
    calls.clear()
    watcher.sample()
    assert sorted(described(calls)) == ["d", "f"]
    assert shown(watcher) == ["f", "d", "b"]


def test_exactly_max_jobs_are_all_shown_and_one_more_is_not_read(cloud, monkeypatch):
    """Both sides of the bound: as many jobs as max_jobs, then one more."""
    local_jobs(cloud, "a", "b", "c")
    backend = LocalBackend(cloud.home)
    calls = counting(backend, monkeypatch)
    watcher = Watcher(backend, max_jobs=3, clock=cloud.clock)
    watcher.sample()
    assert shown(watcher) == ["c", "b", "a"] and len(described(calls)) == 3
    local_jobs(cloud, "d")
    calls.clear()
    watcher = Watcher(backend, max_jobs=3, clock=cloud.clock)  # a first reading again
    watcher.sample()
    assert shown(watcher) == ["d", "c", "b"]
    assert sorted(described(calls)) == ["b", "c", "d"]


def test_fota_jobs_limit_describes_only_the_jobs_it_prints(cloud, capsys, monkeypatch):
    local_jobs(cloud, *CREATED)
    calls: list[str] = []
    call = LocalBackend.call

    def counted(self: LocalBackend, op: str, *a: Any, **kw: Any) -> dict[str, Any]:
        calls.append(op)
        return call(self, op, *a, **kw)

    monkeypatch.setattr(LocalBackend, "call", counted)
    code, out, err = cloud.fota(capsys, "jobs", "--limit", "2", "--json")
    assert code == 0, err
    assert [j["job_id"] for j in json.loads(out)] == NEWEST[:2]
    assert calls.count("DescribeJob") == 2
    code, out, err = cloud.fota(capsys, "jobs", "--limit", "1")
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0].split() == ["JOB", "STATUS", "CREATED", "THINGS"]
    assert [r.split()[0] for r in rows[1:]] == ["d"]
    # more than there are: every job, as without --limit
    code, out, err = cloud.fota(capsys, "jobs", "--limit", "6", "--json")
    assert code == 0, err
    assert [j["job_id"] for j in json.loads(out)] == list(reversed(CREATED))
    calls.clear()
    code, out, err = cloud.fota(capsys, "jobs", "--json")
    assert [j["job_id"] for j in json.loads(out)] == list(reversed(CREATED))
    assert calls.count("DescribeJob") == len(CREATED)


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_fota_jobs_limit_below_one_exits_2(cloud, capsys, limit):
    code, out, err = cloud.fota(capsys, "jobs", "--limit", limit)
    assert code == 2 and not out and f"bad --limit {limit}: at least 1 job" in err, err


# -- AWS through moto ------------------------------------------------------------------------
def test_the_dashboard_describes_only_the_newest_jobs_on_aws(moto, aws_env):
    """moto's account is shared with the other tests of the session: it has more jobs than
    these; this test's are made the newest."""
    backend = AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN)
    thing = unique("hall")
    backend.iot.create_thing(thingName=thing)
    arn = backend.thing_arn(thing)
    ids = {name: unique(f"job-{name}") for name in CREATED + ["f"]}
    model = moto.iot_model()
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for i, name in enumerate(CREATED):
        backend.create_job(ids[name], [arn], DOC, Rollout())
        model.jobs[ids[name]].created_at = now + dt.timedelta(seconds=i)
    assert len(backend.listed_jobs()) > 3

    describes: list[str] = []
    backend.iot.meta.events.register("before-parameter-build.iot.DescribeJob",
                                     lambda params, **kw: describes.append(params["jobId"]))
    watcher = Watcher(backend, max_jobs=3)
    watcher.sample()
    assert json.loads(watcher.json())["error"] is None
    assert sorted(describes) == sorted(ids[n] for n in NEWEST)
    assert shown(watcher) == [ids[n] for n in NEWEST]

    backend.create_job(ids["f"], [arn], DOC, Rollout())
    model.jobs[ids["f"]].created_at = now + dt.timedelta(seconds=len(CREATED))
    describes.clear()
    watcher.sample()
    assert shown(watcher) == [ids[n] for n in ("f", "d", "b")]
    assert sorted(describes) == sorted(ids[n] for n in ("f", "d", "b"))


# -- AWS's API model (botocore's Stubber) ------------------------------------------------------
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def summary(job_id: str, hours: int, status: str = "COMPLETED") -> dict[str, Any]:
    return {"jobId": job_id, "jobArn": f"arn:aws:iot:{REGION}:1:job/{job_id}", "status": status,
            "createdAt": T0 + dt.timedelta(hours=hours),
            "lastUpdatedAt": T0 + dt.timedelta(hours=hours, minutes=5),
            "completedAt": T0 + dt.timedelta(hours=hours, minutes=5)}


def test_listed_jobs_reads_every_page_of_list_jobs_and_sorts_them_on_awss_model(aws_env):
    """AWS does not say in what order ListJobs lists: two pages, out of order, newest first
    after; each page as large as the API allows; no DescribeJob."""
    from botocore.stub import Stubber

    backend = AwsBackend(endpoint_url="http://127.0.0.1:9", region=REGION)
    running = summary("mid", 2, "IN_PROGRESS")
    del running["completedAt"]
    with Stubber(backend.iot) as stub:
        stub.add_response("list_jobs", {"jobs": [summary("old", 1), running], "nextToken": "t"},
                          {"maxResults": 250})
        stub.add_response("list_jobs", {"jobs": [summary("new", 3)]},
                          {"maxResults": 250, "nextToken": "t"})
        listed = backend.listed_jobs()
        stub.assert_no_pending_responses()
    assert [j.job_id for j in listed] == ["new", "mid", "old"]
    assert listed[1] == ListedJob("mid", "IN_PROGRESS", (T0 + dt.timedelta(hours=2)).timestamp(),
                                  (T0 + dt.timedelta(hours=2, minutes=5)).timestamp(), None)
    assert listed[0].completed_at == (T0 + dt.timedelta(hours=3, minutes=5)).timestamp()


def test_jobs_limit_describes_only_the_newest_on_awss_model(aws_env):
    from botocore.stub import Stubber

    backend = AwsBackend(endpoint_url="http://127.0.0.1:9", region=REGION)
    with Stubber(backend.iot) as stub:
        stub.add_response("list_jobs", {"jobs": [summary("old", 1), summary("new", 2)]})
        stub.add_response("describe_job", {"job": {
            "jobId": "new", "status": "COMPLETED", "createdAt": T0 + dt.timedelta(hours=2),
            "targets": [f"arn:aws:iot:{REGION}:1:thing/a"],
            "jobProcessDetails": {"numberOfSucceededThings": 1}}}, {"jobId": "new"})
        js = fleet.jobs(backend, limit=1)
        stub.assert_no_pending_responses()  # and no DescribeJob of "old" (Stubber refuses it)
    assert [(j.job_id, j.counts) for j in js] == [("new", {"SUCCEEDED": 1})]
