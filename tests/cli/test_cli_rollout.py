"""`fota publish --watch` of a rate-limited group rollout, end to end on the running stand-in
(its own timer releasing one thing a minute, a minute lasting a second here), with the devices
played over MQTT as in test_cli_local."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from tests.cli.conftest import Fota, base_env, unique
from tests.cli.images import app_image
from tests.cli.test_cli_local import Device


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """`fota cloud start --minute 1`: a Jobs minute lasts a second."""
    tmp = tmp_path_factory.mktemp("fast")
    env = base_env(tmp)
    env["FOTA_BACKEND"] = "local"
    fota = Fota(env, tmp)
    r = fota("cloud", "start", "--minute", "1")
    assert r.code == 0, r.err
    try:
        yield fota
    finally:
        assert fota("cloud", "stop").code == 0


def take(home, thing: str, outcome: str, patience: float = 60.0) -> None:
    """The device waits for its execution (the rollout queues it when its turn comes), then
    reports it IN_PROGRESS and `outcome`."""
    dev = Device(home, thing)
    try:
        deadline = time.monotonic() + patience
        while True:
            msg = dev.request("start-next", {"clientToken": "next"}, "start-next/accepted")
            if "execution" in msg:
                break
            assert time.monotonic() < deadline, f"{thing} was never queued"
            time.sleep(0.1)
        job_id = msg["execution"]["jobId"]
        dev.update(job_id, outcome, {"step": "done"})
    finally:
        dev.close()


def fleet(fota, tmp_path):
    home = fota.env["FOTA_HOME"]
    things = sorted(unique("kitchen") for _ in range(3))
    for t in things:
        assert fota("provision", t).code == 0
    group = unique("kitchens")
    assert fota("group", "create", group, *things).code == 0
    (tmp_path / "fw.bin").write_bytes(app_image("6.0.0"))
    return home, things, group


def test_watch_waits_for_the_last_thing_of_a_rate_limited_rollout(fast, tmp_path):
    from pathlib import Path

    home, things, group = fleet(fast, tmp_path)
    job_id = unique("roll")
    devices = [threading.Thread(target=take, args=(Path(home), t, "SUCCEEDED")) for t in things]
    for d in devices:
        d.start()
    r = fast("publish", tmp_path / "fw.bin", "--group", group, "--rate", "1/min", "--job-id",
             job_id, "--watch", "--interval", "0.2", "--watch-timeout", "120", timeout=180)
    for d in devices:
        d.join(90)
    assert r.code == 0, r.out + r.err
    lines = r.out.splitlines()
    # the watch ends when every target has SUCCEEDED; the job itself becomes COMPLETED when the
    # service gets to it, which may be just after the watch's last reading
    assert re.fullmatch(rf"job {job_id}: (COMPLETED|IN_PROGRESS), version 6\.0\.0: 3/3 succeeded",
                        lines[-5]), lines[-5]
    assert lines[-1] == "totals: 3 SUCCEEDED of 3; result: succeeded"
    # the watch ended only when the third thing had succeeded
    st = json.loads(fast("status", job_id, "--json").out)
    assert [e["status"] for e in st["executions"]] == ["SUCCEEDED"] * 3


def test_watch_of_an_aborted_rollout_counts_the_spared(fast, tmp_path):
    from pathlib import Path

    home, things, group = fleet(fast, tmp_path)
    job_id = unique("abort")
    device = threading.Thread(target=take, args=(Path(home), things[0], "FAILED"))
    device.start()
    r = fast("publish", tmp_path / "fw.bin", "--group", group, "--rate", "1/min", "--job-id",
             job_id, "--abort-percent", "50", "--watch", "--interval", "0.2",
             "--watch-timeout", "120", "--json", timeout=180)
    device.join(90)
    assert r.code == 1, r.out + r.err
    report = json.loads(r.out)
    assert (report["status"], report["reason_code"]) == ("CANCELED", "ABORTED")
    assert report["counts"] == {"FAILED": 1, "SPARED": 2}
