"""`fota` end to end in subprocesses, with `--backend aws` against a moto server.

moto has no Jobs device data plane: the device's side of a rollout is played by setting the
execution states in moto's model (the server runs in this process); see test_aws.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from cryptography import x509

from tests.cli.conftest import ROLE_ARN, unique
from tests.cli.images import app_image


def test_provision_build_publish_status_cancel(fota_aws, moto, tmp_path):
    thing = unique("dev")
    r = fota_aws("provision", thing, "--json")
    assert r.code == 0, r.err
    prov = json.loads(r.out)
    folder = tmp_path / "home" / "things" / thing / "device"
    assert prov["device_folder"] == str(folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg == {"thing": thing, "endpoint": cfg["endpoint"], "port": 8883,
                   "cert": "certs/device.crt.der", "key": "certs/device.key.der",
                   "ca": "certs/ca.der", "ntp": ["time.aws.com", "time.cloudflare.com", "pool.ntp.org"]}
    assert cfg["endpoint"].endswith("-ats.iot.eu-west-1.amazonaws.com")
    x509.load_der_x509_certificate((folder / "certs" / "ca.der").read_bytes())

    (tmp_path / "fw.bin").write_bytes(app_image("2.1.0", size=64_000))
    r = fota_aws("build", tmp_path / "fw.bin", "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)

    job_id = unique("job")
    r = fota_aws("publish", manifest["manifest"], "--thing", thing, "--job-id", job_id,
                 "--rate", "5/min", "--abort-percent", "50", "--abort-min", "2",
                 "--timeout", "30", "--expires", "600", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    key = f"firmware/micropython/2.1.0/{manifest['file']}"
    assert out["document"] == {
        "operation": "fota", "bc_idx": -1, "bc_crc": manifest["md5"],
        "bc_size": manifest["size"],
        "bc_url": f"${{aws:iot:s3-presigned-url:{out['url']}}}", "version": "2.1.0"}
    assert out["url"].endswith(f"/{key}")
    bucket = fota_aws.env["FOTA_BUCKET"]
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == (tmp_path / "rel" / manifest["file"]).read_bytes()
    job = moto.iot_model().jobs[job_id]
    assert job.presigned_url_config == {"roleArn": ROLE_ARN, "expiresInSec": 600}
    assert job.job_executions_rollout_config == {"maximumPerMinute": 5}
    assert job.abort_config["criteriaList"][0]["minNumberOfExecutedThings"] == 2
    assert job.timeout_config == {"inProgressTimeoutInMinutes": 30}

    r = fota_aws("status", job_id, "--json")
    assert r.code == 3, r.err  # queued: still in progress
    st = json.loads(r.out)
    assert st["result"] == "in_progress" and st["counts"] == {"QUEUED": 1}
    assert st["executions"][0]["thing"] == thing

    moto.device_update(job_id, thing, "SUCCEEDED", {"version": "2.1.0"})
    r = fota_aws("status", job_id)
    assert r.code == 0, r.err
    assert f"{thing}" in r.out and "SUCCEEDED" in r.out and "version=2.1.0" in r.out

    moto.device_update(job_id, thing, "FAILED", {"reason": "selftest"})
    r = fota_aws("status", job_id, "--json")
    assert r.code == 1 and json.loads(r.out)["result"] == "failed"

    r = fota_aws("cancel", job_id, "--force", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["status"] == "CANCELED"


def test_publish_to_group_with_endpoint_option(fota_aws, moto, tmp_path):
    env = dict(fota_aws.env)
    del env["AWS_ENDPOINT_URL"]
    fota_aws.env = env
    ep = ["--endpoint-url", moto.url]
    things = [unique("dev"), unique("dev")]
    for t in things:
        assert fota_aws("provision", t, *ep).code == 0
    group = unique("grp")
    r = fota_aws("group", "create", group, things[0], *ep)
    assert r.code == 0, r.err
    r = fota_aws("group", "add", group, things[1], *ep, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["added"] == [things[1]]
    (tmp_path / "fw.bin").write_bytes(app_image("2.2.0"))
    # publishing an image directly, without a build step
    r = fota_aws("publish", tmp_path / "fw.bin", "--group", group, "--slot", "1", *ep)
    assert r.code == 0, r.err
    job_id = r.out.split()[1].rstrip(":")
    assert job_id.startswith("fota-2-2-0-")
    job = moto.iot_model().jobs[job_id]
    assert job.targets == [f"arn:aws:iot:eu-west-1:123456789012:thinggroup/{group}"]
    assert json.loads(job.document)["bc_idx"] == 1


def test_status_watch_follows_until_done(fota_aws, moto, tmp_path):
    thing = unique("dev")
    assert fota_aws("provision", thing).code == 0
    (tmp_path / "fw.bin").write_bytes(app_image("3.0.0"))
    job_id = unique("job")
    assert fota_aws("publish", tmp_path / "fw.bin", "--thing", thing,
                    "--job-id", job_id).code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "fotatools.cli", "status", job_id, "--watch", "--interval",
         "0.1", "--timeout", "60"], env=fota_aws.env, cwd=fota_aws.cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []

    def expect(state: str) -> None:  # the watcher prints a line per change of state
        while True:
            line = proc.stdout.readline()
            assert line, f"watch ended before {state}: {lines}"
            lines.append(line)
            if line.split()[1:3] == [f"{thing}:", state]:
                return

    try:
        expect("QUEUED")
        moto.device_update(job_id, thing, "IN_PROGRESS", {"step": "download"})
        expect("IN_PROGRESS")
        moto.device_update(job_id, thing, "SUCCEEDED", {"version": "3.0.0"})
        expect("SUCCEEDED")
        rest = proc.stdout.read()  # what readline() buffered is not in the pipe any more
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "step=download" in "".join(lines)
    assert "result: succeeded" in rest


def test_status_watch_stops_at_timeout(fota_aws, tmp_path):
    thing = unique("dev")
    assert fota_aws("provision", thing).code == 0
    (tmp_path / "fw.bin").write_bytes(app_image("3.1.0"))
    job_id = unique("job")
    assert fota_aws("publish", tmp_path / "fw.bin", "--thing", thing, "--job-id", job_id,
                    "--watch", "--watch-timeout", "0.5", "--interval", "0.1").code == 3


def test_unknown_names_exit_2(fota_aws, tmp_path):
    r = fota_aws("status", "no-such-job")
    # (moto has no OTA updates: AWS would add "(nor an OTA update of that id)")
    assert r.code == 2 and r.err.startswith("fota: error: no job 'no-such-job' in eu-west-1")
    assert r.err.count("\n") == 1
    (tmp_path / "fw.bin").write_bytes(app_image("1.0.0"))
    r = fota_aws("publish", tmp_path / "fw.bin", "--thing", "never-provisioned")
    assert r.code == 2 and r.err.startswith("fota: error: no thing 'never-provisioned' in "
                                            "eu-west-1") and "Traceback" not in r.err


def test_backend_failures_exit_1(fota_aws):
    r = fota_aws("status", "job-1", "--endpoint-url", "http://127.0.0.1:9")  # nothing listens
    assert r.code == 1 and r.err.startswith("fota: error: job job-1: ") and r.err.count("\n") == 1


def test_publish_needs_bucket_and_role(fota_aws, tmp_path):
    (tmp_path / "fw.bin").write_bytes(app_image("1.0.0"))
    env = dict(fota_aws.env)
    env.pop("FOTA_BUCKET")
    fota_aws.env = env
    r = fota_aws("publish", tmp_path / "fw.bin", "--thing", "x")
    assert r.code == 2 and "FOTA_BUCKET" in r.err
    r = fota_aws("publish", tmp_path / "fw.bin", "--thing", "x", "--bucket", unique("b"),
                 "--role-arn", "not-an-arn")
    assert r.code == 2 and "bad role ARN" in r.err


def test_provision_again_needs_force(fota_aws, tmp_path):
    thing = unique("dev")
    out = tmp_path / "board"
    r = fota_aws("provision", thing, "--out", out, "--json")
    assert r.code == 0, r.err
    first = json.loads(r.out)["certificate_id"]
    key = (out / "certs" / "device.key.der").read_bytes()
    r = fota_aws("provision", thing, "--out", out)
    assert r.code == 2 and "already provisioned" in r.err
    assert (out / "certs" / "device.key.der").read_bytes() == key
    r = fota_aws("provision", thing, "--out", out, "--force", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["certificate_id"] != first
    assert (out / "certs" / "device.key.der").read_bytes() != key
    kept = json.loads((tmp_path / "home" / "things" / thing / "thing.json").read_text())
    assert kept["certificate_id"] == json.loads(r.out)["certificate_id"]


def test_publish_an_application(fota_aws, moto, tmp_path):
    thing = unique("dev")
    assert fota_aws("provision", thing).code == 0
    app = tmp_path / "meter"
    app.mkdir()
    (app / "app.py").write_text("def step(conn):\n    pass\n")
    (app / "VERSION").write_text("2.0.0\n")
    r = fota_aws("build", "--app", app, "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota_aws("publish", manifest["manifest"], "--thing", thing, "--slot", "0", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    key = f"apps/meter/2.0.0/{manifest['file']}"
    assert out["url"].endswith(f"/{key}")
    assert out["document"] == {
        "operation": "fota", "bc_idx": 0, "bc_crc": manifest["md5"], "bc_size": manifest["size"],
        "bc_url": f"${{aws:iot:s3-presigned-url:{out['url']}}}", "version": "2.0.0",
        "target": "app"}
    import boto3
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = s3.get_object(Bucket=fota_aws.env["FOTA_BUCKET"], Key=key)["Body"].read()
    assert stored == (tmp_path / "rel" / manifest["file"]).read_bytes()


def group_rollout(fota_aws, moto, tmp_path, *options: str) -> tuple[str, list[str]]:
    """Three things in a group, a job for it at one thing a minute, and AWS's rollout as it
    starts: the first thing queued, the other two not yet."""
    things = sorted(unique("kitchen") for _ in range(3))
    for t in things:
        assert fota_aws("provision", t).code == 0
    group = unique("kitchens")
    assert fota_aws("group", "create", group, *things).code == 0
    (tmp_path / "fw.bin").write_bytes(app_image("4.0.0"))
    job_id = unique("roll")
    r = fota_aws("publish", tmp_path / "fw.bin", "--group", group, "--rate", "1/min",
                 "--job-id", job_id, *options)
    assert r.code == 0, r.err
    moto.hold_back(job_id)
    moto.roll_out(job_id, things[0])
    return job_id, things


def status(fota_aws, job_id: str) -> tuple[int, dict]:
    r = fota_aws("status", job_id, "--json")
    assert not r.err, r.err
    return r.code, json.loads(r.out)


def test_rate_limited_group_rollout_is_in_progress_until_the_last_thing(fota_aws, moto, tmp_path):
    job_id, things = group_rollout(fota_aws, moto, tmp_path)
    code, st = status(fota_aws, job_id)
    assert code == 3 and st["total"] == 3 and st["counts"] == {"QUEUED": 1, "WAITING": 2}
    assert st["summary"] == "0/3 succeeded, 1 queued, 2 waiting (not yet queued at 1/min)"
    for done, thing in enumerate(things, 1):
        moto.device_update(job_id, thing, "IN_PROGRESS", {"step": "download"})
        assert status(fota_aws, job_id)[0] == 3
        moto.device_update(job_id, thing, "SUCCEEDED", {"version": "4.0.0"})
        code, st = status(fota_aws, job_id)
        if done < 3:
            assert code == 3 and st["counts"] == {"SUCCEEDED": done, "WAITING": 3 - done}
            moto.roll_out(job_id, things[done])
    assert code == 0 and st["counts"] == {"SUCCEEDED": 3}
    moto.job_ends(job_id, "COMPLETED")
    r = fota_aws("status", job_id)
    assert r.code == 0 and "3/3 succeeded" in r.out.splitlines()[0]


def test_aborted_group_rollout_counts_the_spared(fota_aws, moto, tmp_path):
    job_id, things = group_rollout(fota_aws, moto, tmp_path, "--abort-percent", "50")
    moto.device_update(job_id, things[0], "SUCCEEDED")
    moto.roll_out(job_id, things[1])
    moto.roll_out(job_id, things[2])
    moto.device_update(job_id, things[1], "FAILED", {"reason": "selftest failed"})
    moto.job_ends(job_id, "CANCELED")  # the abort: things[2] was still QUEUED
    code, st = status(fota_aws, job_id)
    assert code == 1 and st["result"] == "failed"
    assert st["counts"] == {"SUCCEEDED": 1, "FAILED": 1, "SPARED": 1}
    moto.hold_back(job_id)  # the same abort a minute earlier: only things[0] had been reached
    moto.roll_out(job_id, things[0])
    moto.device_update(job_id, things[0], "FAILED")
    code, st = status(fota_aws, job_id)
    assert code == 1 and st["counts"] == {"FAILED": 1, "SPARED": 2}
    assert st["summary"] == "0/3 succeeded, 1 failed, 2 spared (canceled before they started)"
