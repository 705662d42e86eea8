"""`fota dashboard` over plain HTTP: what the page's JSON says of a rollout (on the stand-in and
on AWS through moto), who may read it (loopback names without a token, elsewhere only with
it), and that it changes nothing. What a person sees in a browser: test_dashboard_browser.py."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fotatools.cloud.client import LocalBackend
from fotatools.dashboard import Dashboard
from tests.cli.conftest import Fota, base_env, unique
from tests.cli.images import app_image
from tests.cli.standin import StandIn

KITCHENS = ["kitchen-1", "kitchen-2", "kitchen-3"]
TOKEN = "t0ken-of-the-dashboard-0123456789"


@pytest.fixture
def cloud(tmp_path):
    s = StandIn(tmp_path / "home")
    s.api.shadows.clock = s.clock
    yield s
    s.close()


@pytest.fixture
def rollout(cloud, tmp_path, capsys):
    """Three things in a group, a job for them at one thing a minute: kitchen-1 failed it."""
    cloud.group("kitchens", cloud.things(*KITCHENS))
    fw = tmp_path / "fw.bin"
    fw.write_bytes(app_image("1.2.0"))
    code, _, err = cloud.fota(capsys, "publish", fw, "--group", "kitchens", "--rate", "1/min",
                              "--job-id", "roll")
    assert code == 0, err
    report(cloud, "kitchen-1", "roll", "IN_PROGRESS", step="download")
    report(cloud, "kitchen-1", "roll", "FAILED", step="verify", reason="md5 mismatch")
    return cloud


def report(cloud: StandIn, thing: str, job_id: str, status: str, **details: str) -> None:
    """What a device's UpdateJobExecution sends."""
    body = {"status": status, "statusDetails": details} if details else {"status": status}
    cloud.engine.handle(f"$aws/things/{thing}/jobs/{job_id}/update", json.dumps(body).encode())


def shadow(cloud: StandIn, thing: str, **reported: Any) -> None:
    """What a board reports to its device shadow (lib/fota/shadow.py)."""
    cloud.api.shadows.handle(f"$aws/things/{thing}/shadow/update",
                             json.dumps({"state": {"reported": reported}}).encode())


@contextmanager
def dashboard(cloud: StandIn, **kw: Any) -> Iterator[Dashboard]:
    """The dashboard's server on a free port; its state read once before any request (the
    watcher's own thread reads again only after an hour)."""
    d = Dashboard(LocalBackend(cloud.home), port=0, interval=3600, **{"host": "127.0.0.1", **kw})
    d.watcher.sample()
    d.start()
    try:
        yield d
    finally:
        d.stop()


def request(d: Dashboard, path: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request to 127.0.0.1 (Host as a browser on this machine sends it, unless given);
    redirects are not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", d.server.port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": f"127.0.0.1:{d.server.port}",
                                            **(headers or {})})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def state(d: Dashboard, **headers: str) -> dict[str, Any]:
    code, _, body = request(d, "/api/state", headers=headers)
    assert code == 200, body
    return json.loads(body)


# -- what it says ------------------------------------------------------------------------------
def test_the_state_counts_every_target_with_step_and_reason(rollout):
    with dashboard(rollout) as d:
        st = state(d)
        assert st["backend"] == "local" and st["error"] is None
        (job,) = st["jobs"]
        assert job["job_id"] == "roll" and job["status"] == "IN_PROGRESS"
        assert job["version"] == "1.2.0" and job["total"] == 3
        assert job["series"] == {"succeeded": 0, "in_progress": 0, "failed": 1, "waiting": 2,
                                 "spared": 0}
        assert job["summary"] == "0/3 succeeded, 1 failed, 2 waiting (not yet queued at 1/min)"
        rows = {t["thing"]: t for t in job["targets"]}
        assert (rows["kitchen-1"]["state"], rows["kitchen-1"]["step"],
                rows["kitchen-1"]["reason"]) == ("FAILED", "verify", "md5 mismatch")
        assert (rows["kitchen-2"]["state"], rows["kitchen-2"]["note"]) == \
            ("WAITING", "(not queued yet)")
        things = {t["thing"]: t for t in st["fleet"]["things"]}
        assert sorted(things) == KITCHENS
        assert (things["kitchen-1"]["job"], things["kitchen-1"]["state"],
                things["kitchen-1"]["reason"]) == ("roll", "FAILED", "md5 mismatch")
        assert things["kitchen-2"]["job"] is None


def test_the_chart_keeps_each_change_of_the_counts(rollout):
    """One point a change, none when nothing moved: the rollout over time."""
    for thing in KITCHENS:
        shadow(rollout, thing, firmware="1.0.0", app="none")
    with dashboard(rollout) as d:
        assert [p[1:] for p in state(d)["jobs"][0]["points"]] == [[0, 0, 1, 2, 0]]
        d.watcher.sample()  # nothing moved
        assert len(state(d)["jobs"][0]["points"]) == 1
        rollout.minute()  # kitchen-2 queued: still "waiting" on the chart
        d.watcher.sample()
        assert len(state(d)["jobs"][0]["points"]) == 1
        report(rollout, "kitchen-2", "roll", "IN_PROGRESS", step="download")
        d.watcher.sample()
        report(rollout, "kitchen-2", "roll", "SUCCEEDED", version="1.2.0", app_version="none")
        d.watcher.sample()
        shadow(rollout, "kitchen-2", firmware="1.2.0", app="none",
               job={"id": "roll", "status": "SUCCEEDED", "reason": None, "step": "confirm"})
        d.watcher.sample()  # the board's report comes a moment after its job's
        st = state(d)
        assert [p[1:] for p in st["jobs"][0]["points"]] == [
            [0, 0, 1, 2, 0], [0, 1, 1, 1, 0], [1, 0, 1, 1, 0]]
        times = [p[0] for p in st["jobs"][0]["points"]]
        assert times == sorted(times)
        # what the boards' shadows say they run, counted by version
        fleet = st["fleet"]
        assert fleet["firmware"] == [{"version": "1.0.0", "things": 2},
                                     {"version": "1.2.0", "things": 1}]
        assert fleet["application"] == [{"version": "none", "things": 3}]
        things = {t["thing"]: t for t in fleet["things"]}
        assert (things["kitchen-2"]["firmware"], things["kitchen-2"]["state"]) == \
            ("1.2.0", "SUCCEEDED")


def test_an_ended_job_is_read_no_more_and_a_deleted_one_goes(rollout, capsys):
    with dashboard(rollout) as d:
        assert rollout.fota(capsys, "cancel", "roll")[0] == 0
        d.watcher.sample()
        job = state(d)["jobs"][0]
        assert (job["status"], job["series"]["spared"]) == ("CANCELED", 2)
        assert d.watcher.jobs["roll"].settled
        rollout.engine.delete_job({"jobId": "roll"})
        d.watcher.sample()
        assert state(d)["jobs"] == []


def test_a_control_plane_that_stops_answering_keeps_the_last_state(rollout):
    with dashboard(rollout) as d:
        rollout.server.stop()
        d.watcher.sample()
        st = state(d)
        assert "does not answer" in st["error"]
        assert st["jobs"][0]["job_id"] == "roll"  # the last state it read


def test_shadows_are_read_a_few_at_a_time_those_whose_job_moved_first(rollout, monkeypatch):
    """A large fleet's shadows are read SHADOW_READS at a time (here one): never read first,
    then a thing whose job just moved (its board reports after each job), then the oldest."""
    from fotatools import dashboard as dash

    monkeypatch.setattr(dash, "SHADOW_READS", 1)
    read: list[str] = []
    backend = LocalBackend(rollout.home)
    shadow_of = backend.thing_shadow
    monkeypatch.setattr(backend, "thing_shadow", lambda t: read.append(t) or shadow_of(t))
    watcher = dash.Watcher(backend)
    for _ in range(3):
        watcher.sample()
    assert read == KITCHENS  # each once, by name
    rollout.minute()  # kitchen-2 is queued: its job moved
    watcher.sample()
    assert read[-1] == "kitchen-2"
    for _ in range(dash.AGAIN - 1):  # and again, for a report that comes a moment later
        watcher.sample()
    assert read[3:] == ["kitchen-2"] * dash.AGAIN
    watcher.sample()  # then the one read longest ago
    assert read[-1] == "kitchen-1"


def test_shadows_that_cannot_be_read_leave_the_jobs(rollout, monkeypatch):
    from fotatools.backend import BackendError

    backend = LocalBackend(rollout.home)

    def refused(thing: str) -> None:
        raise BackendError("shadow of kitchen-1: AccessDeniedException: not authorized")

    monkeypatch.setattr(backend, "thing_shadow", refused)
    d = Dashboard(backend, port=0)
    d.watcher.sample()
    st = json.loads(d.watcher.json())
    d.server.server_close()
    assert st["error"] is None and "AccessDeniedException" in st["shadow_error"]
    assert st["jobs"][0]["summary"] == "0/3 succeeded, 1 failed, 2 waiting (not yet queued at 1/min)"
    assert st["fleet"]["firmware"] == [{"version": None, "things": 3}]


# -- who may read it ---------------------------------------------------------------------------
def test_on_loopback_the_page_answers_loopback_names_only(rollout):
    with dashboard(rollout) as d:
        port = d.server.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            code, headers, body = request(d, "/", headers={"Host": host})
            assert code == 200, host
            assert headers["content-type"] == "text/html; charset=utf-8"
            # a fresh nonce a page, and only the page's own script and style run
            nonce = re.search(r"script-src 'nonce-([^']+)'", headers["content-security-policy"])
            assert nonce and body.count(f'nonce="{nonce.group(1)}"'.encode()) == 2
        # a web page that had its own name resolve to 127.0.0.1 (DNS rebinding)
        for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}", ""):
            for path in ("/", "/api/state"):
                code, _, body = request(d, path, headers={"Host": host})
                assert code == 403, (host, path)
                assert b"roll" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_read_only(rollout, capsys, method):
    with dashboard(rollout) as d:
        for path in ("/", "/api/state", "/api/cancel?job=roll"):
            code, headers, _ = request(d, path, method=method)
            assert code == 405 and headers["allow"] == "GET, HEAD"
    code, st = rollout.status(capsys, "roll")
    assert st["status"] == "IN_PROGRESS" and st["counts"] == {"FAILED": 1, "WAITING": 2}


def test_elsewhere_every_request_carries_the_token(rollout):
    with dashboard(rollout, host="0.0.0.0", token=TOKEN) as d:
        cookie = f"fota_dashboard_{d.server.port}"
        for path in ("/", "/api/state"):
            assert request(d, path)[0] == 401
            for wrong in (TOKEN[:-1], TOKEN + "x", TOKEN[:-1] + "X", ""):
                assert request(d, f"{path}?token={wrong}")[0] == 401, wrong
                assert request(d, path, headers={"Cookie": f"{cookie}={wrong}"})[0] == 401
                assert request(d, path, headers={"Authorization": f"Bearer {wrong}"})[0] == 401
            # another dashboard's cookie (another port) is no token for this one
            assert request(d, path, headers={"Cookie": f"fota_dashboard_1={TOKEN}"})[0] == 401
        # the token once in the address: a cookie, and on to the page without it
        code, headers, _ = request(d, f"/?token={TOKEN}")
        assert code == 303 and headers["location"] == "/"
        assert headers["set-cookie"] == (f"{cookie}={TOKEN}; Path=/; HttpOnly; "
                                         "SameSite=Strict")
        assert request(d, "/", headers={"Cookie": f"other=1; {cookie}={TOKEN}"})[0] == 200
        assert state(d, Cookie=f"{cookie}={TOKEN}")["jobs"][0]["job_id"] == "roll"
        assert state(d, Authorization=f"Bearer {TOKEN}")["jobs"][0]["job_id"] == "roll"
        # with the token, the Host may be whatever name the machine is reached by
        assert request(d, "/api/state", headers={"Host": "fleet.example:8765",
                                                 "Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert request(d, "/api/state", method="POST",
                       headers={"Authorization": f"Bearer {TOKEN}"})[0] == 405


def test_a_token_given_on_loopback_is_required_there_too(rollout):
    with dashboard(rollout, token=TOKEN) as d:
        assert request(d, "/api/state")[0] == 401
        assert request(d, "/api/state", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


# -- the command -------------------------------------------------------------------------------
@contextmanager
def fota_dashboard(env: dict[str, str], *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`fota dashboard ARGS` running, and the address it printed; stopped with Ctrl-C."""
    proc = subprocess.Popen([sys.executable, "-m", "fotatools.cli", "dashboard", "--port", "0",
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()  # the first line: where the page is
        m = re.search(r"(http://\S+)", line)
        assert m, line + proc.stderr.read()
        yield proc, m.group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(30)


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", u.port, timeout=10)
    try:
        conn.request("GET", u.path + (f"?{u.query}" if u.query else ""),
                     headers={"Host": f"127.0.0.1:{u.port}", **headers})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def local_env(cloud: StandIn, tmp_path) -> dict[str, str]:
    env = base_env(tmp_path)
    env["FOTA_HOME"] = str(cloud.home)
    return env


def test_fota_dashboard_elsewhere_makes_a_token_and_prints_it(rollout, tmp_path):
    with fota_dashboard(local_env(rollout, tmp_path), "--host", "0.0.0.0") as (proc, url):
        m = re.fullmatch(r"http://[^/]+:(\d+)/\?token=([A-Za-z0-9_-]{32})", url)
        assert m, url
        base = f"http://127.0.0.1:{m.group(1)}"
        assert get(f"{base}/api/state")[0] == 401
        code, headers, _ = get(f"{base}/?token={m.group(2)}")
        assert code == 303
        cookie = headers["set-cookie"].split(";")[0]
        code, _, body = get(f"{base}/api/state", Cookie=cookie)
        assert code == 200 and json.loads(body)["jobs"][0]["job_id"] == "roll"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert proc.stdout.read().splitlines()[-1] == "dashboard stopped"


def test_fota_dashboard_on_loopback_has_no_token(rollout, tmp_path):
    with fota_dashboard(local_env(rollout, tmp_path)) as (proc, url):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
        assert get(url)[0] == 200


def test_fota_dashboard_on_aws(fota_aws, moto, tmp_path):
    """The same page of a rollout on AWS (moto), the job's executions as AWS makes them."""
    things = sorted(unique("kitchen") for _ in range(3))
    for t in things:
        assert fota_aws("provision", t).code == 0
    group = unique("kitchens")
    assert fota_aws("group", "create", group, *things).code == 0
    (tmp_path / "fw.bin").write_bytes(app_image("4.0.0"))
    job_id = unique("roll")
    r = fota_aws("publish", tmp_path / "fw.bin", "--group", group, "--rate", "1/min",
                 "--job-id", job_id)
    assert r.code == 0, r.err
    moto.hold_back(job_id)
    moto.roll_out(job_id, things[0])
    moto.device_update(job_id, things[0], "FAILED", {"step": "verify", "reason": "md5 mismatch"})
    # the shadows through the IoT data plane: moto's, at the same address
    with fota_dashboard(fota_aws.env, "--interval", "0.2", "--endpoint-url", moto.url) as (proc, url):
        def job() -> dict[str, Any] | None:
            code, _, body = get(url + "api/state")
            assert code == 200
            st = json.loads(body)
            return next((j for j in st.get("jobs", []) if j["job_id"] == job_id), None)

        j = until(job)
        assert j["series"] == {"succeeded": 0, "in_progress": 0, "failed": 1, "waiting": 2,
                               "spared": 0}
        rows = {t["thing"]: t for t in j["targets"]}
        assert (rows[things[0]]["step"], rows[things[0]]["reason"]) == ("verify", "md5 mismatch")
        moto.roll_out(job_id, things[1])
        moto.device_update(job_id, things[1], "SUCCEEDED", {"version": "4.0.0"})
        j = until(lambda: (lambda j: j if j and j["series"]["succeeded"] == 1 else None)(job()))
        assert j["summary"] == "1/3 succeeded, 1 failed, 1 waiting (not yet queued at 1/min)"
        # what the board then reports to its shadow: the version it runs
        import boto3

        data = boto3.client("iot-data", endpoint_url=moto.url, region_name="eu-west-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
        mine = "4.0.0+" + things[1]  # a version no other test's thing reports
        data.update_thing_shadow(thingName=things[1], payload=json.dumps(
            {"state": {"reported": {"firmware": mine, "app": "none"}}}).encode())

        # moto's account is shared with the other tests of this session: look at this test's
        # things, and at the count of the version only this thing reports
        def firmware() -> dict[str, Any] | None:
            fleet_state = json.loads(get(url + "api/state")[2])["fleet"]
            ours = {r["thing"]: r["firmware"] for r in fleet_state["things"] if r["thing"] in things}
            return fleet_state if ours.get(things[1]) == mine else None

        fleet_state = until(firmware)
        assert {r["thing"]: r["firmware"] for r in fleet_state["things"] if r["thing"] in things} == {
            things[0]: None, things[1]: mine, things[2]: None}
        assert {"version": mine, "things": 1} in fleet_state["firmware"]


def until(look: Any, patience: float = 60.0) -> Any:
    """Look again (every 0.1 s) until `look` gives something."""
    deadline = time.monotonic() + patience
    while True:
        got = look()
        if got:
            return got
        assert time.monotonic() < deadline, "the dashboard never showed it"
        time.sleep(0.1)


def test_fota_dashboard_without_a_cloud_exits_1(tmp_path):
    r = Fota(base_env(tmp_path), tmp_path)("dashboard", "--port", "0")
    assert r.code == 1 and not r.out
    assert r.err.startswith("fota: error: the local cloud is not running")


def test_fota_dashboard_on_a_port_in_use_exits_2(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = Fota(base_env(tmp_path), tmp_path)("dashboard", "--port", str(port))
    assert r.code == 2 and not r.out
    assert r.err.startswith(f"fota: error: cannot listen on 127.0.0.1:{port}: "), r.err


@pytest.mark.parametrize("args,said", [
    (["--token", "x" * 15], "bad --token"),
    (["--token", "x" * 129], "bad --token"),
    (["--token", "x" * 15 + "!"], "bad --token"),
    (["--port", "-1"], "bad --port -1"),
    (["--port", "65536"], "bad --port 65536"),
    (["--interval", "0"], "bad --interval 0"),
])
def test_bad_options_exit_2(tmp_path, args, said):
    r = Fota(base_env(tmp_path), tmp_path)("dashboard", *args)
    assert r.code == 2 and said in r.err, r.err


@pytest.mark.parametrize("args", [["--token", "x" * 16], ["--token", "x" * 128],
                                  ["--interval", "0.01"]])
def test_options_just_inside_their_bounds_are_taken(tmp_path, args):
    """Taken: the command goes on to the control plane (none runs here: exit 1)."""
    r = Fota(base_env(tmp_path), tmp_path)("dashboard", "--port", "0", *args)
    assert r.code == 1 and "the local cloud is not running" in r.err, r.err
