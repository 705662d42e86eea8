"""`fota` end to end in subprocesses against the local AWS IoT stand-in.

A device is played by paho-mqtt with the certificate `fota provision` made: it takes the job
over the Jobs MQTT API, downloads the firmware from the pre-signed URL the service put in the
document, checks size and MD5, and reports the result, as the real device library does.
"""

from __future__ import annotations

import hashlib
import json
import queue
import ssl
import threading
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.cli.conftest import Fota, base_env, unique
from tests.cli.images import app_image


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """`fota cloud start` on a fresh home; `fota cloud stop` afterwards."""
    tmp = tmp_path_factory.mktemp("local")
    env = base_env(tmp)
    env["FOTA_BACKEND"] = "local"
    fota = Fota(env, tmp)
    r = fota("cloud", "start", "--json")
    assert r.code == 0, r.err
    try:
        yield fota, json.loads(r.out)
    finally:
        r = fota("cloud", "stop")
        assert r.code == 0, r.err


class Device:
    """A thing on the Jobs MQTT API, with the credentials from the host's PEM copies."""

    def __init__(self, home: Path, thing: str):
        keep = home / "things" / thing
        config = json.loads((keep / "device" / "config.json").read_text())
        self.thing = thing
        self.ca = str(keep / "ca.pem")
        self.inbox: queue.Queue = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=thing)
        self.client.tls_set(ca_certs=self.ca, certfile=str(keep / "device.crt.pem"),
                            keyfile=str(keep / "device.key.pem"))
        self.client.on_message = lambda c, u, m: self.inbox.put((m.topic, json.loads(m.payload)))
        self.client.connect(config["endpoint"], config["port"])
        self.client.loop_start()
        base = f"$aws/things/{thing}/jobs"
        self.base = base
        r, _ = self.client.subscribe([(f"{base}/start-next/accepted", 1),
                                      (f"{base}/+/update/accepted", 1),
                                      (f"{base}/+/update/rejected", 1)])
        assert r == mqtt.MQTT_ERR_SUCCESS

    def request(self, topic: str, payload: dict, expect: str) -> dict:
        self.client.publish(f"{self.base}/{topic}", json.dumps(payload), qos=1)
        while True:
            t, msg = self.inbox.get(timeout=15)
            if t.endswith(expect):
                return msg
            assert "rejected" not in t, msg

    def take_job(self) -> dict:
        import time
        for _ in range(50):  # the subscription may still be settling
            msg = self.request("start-next", {"clientToken": "next"}, "start-next/accepted")
            if "execution" in msg:
                return msg["execution"]
            time.sleep(0.1)
        raise AssertionError("no job for " + self.thing)

    def download(self, url: str) -> bytes:
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(url, context=ctx, timeout=15) as resp:
            return resp.read()

    def update(self, job_id: str, status: str, details: dict[str, str]) -> None:
        self.request(f"{job_id}/update", {"status": status, "statusDetails": details},
                     f"{job_id}/update/accepted")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_device(home: Path, thing: str, fail: bool = False) -> dict:
    """Take the next job, fetch and check the image, report SUCCEEDED (or FAILED)."""
    dev = Device(home, thing)
    try:
        ex = dev.take_job()
        doc = ex["jobDocument"]
        assert doc["bc_url"].startswith("https://") and "${" not in doc["bc_url"]
        data = dev.download(doc["bc_url"])
        ok = len(data) == doc["bc_size"] and hashlib.md5(data).hexdigest() == doc["bc_crc"]
        assert ok
        if fail:
            dev.update(ex["jobId"], "FAILED", {"reason": "selftest failed"})
        else:
            dev.update(ex["jobId"], "SUCCEEDED", {"version": doc["version"]})
        return doc
    finally:
        dev.close()


def test_cloud_status(local):
    fota, started = local
    r = fota("cloud", "status", "--json")
    assert r.code == 0, r.err
    st = json.loads(r.out)
    assert st["running"] and st["mqtt_port"] == started["mqtt_port"]
    r = fota("cloud", "status")
    assert r.code == 0 and f":{started['mqtt_port']}" in r.out


def test_provision_build_publish_status_cancel(local, tmp_path):
    fota, cloud = local
    home = Path(fota.env["FOTA_HOME"])
    thing = unique("dev")
    r = fota("provision", thing)
    assert r.code == 0, r.err
    assert "mpremote connect PORT" in r.out
    cfg = json.loads((home / "things" / thing / "device" / "config.json").read_text())
    assert cfg["endpoint"] == "localhost" and cfg["port"] == cloud["mqtt_port"]

    (tmp_path / "fw.bin").write_bytes(app_image("5.0.0", size=300_000))
    r = fota("build", tmp_path / "fw.bin", "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)

    job_id = unique("job")
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", job_id,
             "--timeout", "10", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["document"]["bc_crc"] == manifest["md5"]

    r = fota("status", job_id, "--json")
    assert r.code == 3, r.err
    st = json.loads(r.out)
    assert st["status"] == "IN_PROGRESS" and st["counts"] == {"QUEUED": 1}

    doc = run_device(home, thing)
    assert (doc["bc_size"], doc["bc_idx"], doc["version"]) == (manifest["size"], -1, "5.0.0")

    r = fota("status", job_id, "--json")
    assert r.code == 0, r.err
    st = json.loads(r.out)
    assert st["result"] == "succeeded" and st["counts"] == {"SUCCEEDED": 1}
    assert st["executions"][0]["status_details"] == {"version": "5.0.0"}

    # a second job for the same thing, cancelled before the device takes it
    job2 = unique("job")
    assert fota("publish", manifest["manifest"], "--thing", thing, "--job-id", job2).code == 0
    r = fota("cancel", job2, "--reason", "wrong build", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["status"] == "CANCELED"
    r = fota("status", job2, "--json")
    assert r.code == 1 and json.loads(r.out)["counts"] == {"SPARED": 1}  # cancelled while QUEUED


def test_application_release_document(local, tmp_path):
    fota, _ = local
    home = Path(fota.env["FOTA_HOME"])
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    app = tmp_path / "sensor"
    app.mkdir()
    (app / "app.py").write_text("def main():\n    pass\n")
    r = fota("build", "--app", app, "--version", "0.3.0", "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota("publish", manifest["manifest"], "--thing", thing, "--slot", "1",
             "--job-id", unique("app"), "--json")
    assert r.code == 0, r.err
    assert "/apps/sensor/0.3.0/sensor-app-0.3.0.romfs" in json.loads(r.out)["url"]
    doc = run_device(home, thing)
    assert (doc["target"], doc["bc_idx"], doc["bc_size"], doc["version"]) == (
        "app", 1, manifest["size"], "0.3.0")


def test_group_rollout_watch_reports_a_failure(local, tmp_path):
    fota, _ = local
    home = Path(fota.env["FOTA_HOME"])
    things = [unique("dev"), unique("dev")]
    for t in things:
        assert fota("provision", t).code == 0
    group = unique("grp")
    assert fota("group", "create", group, *things).code == 0
    (tmp_path / "fw.bin").write_bytes(app_image("5.1.0"))
    job_id = unique("job")
    results: list = []

    def devices():
        results.append(run_device(home, things[0]))
        results.append(run_device(home, things[1], fail=True))

    t = threading.Thread(target=devices)
    t.start()
    r = fota("publish", tmp_path / "fw.bin", "--group", group, "--job-id", job_id,
             "--watch", "--interval", "0.2", "--watch-timeout", "60")
    t.join()
    assert len(results) == 2
    assert r.code == 1, r.out + r.err
    assert f"{things[0]}: SUCCEEDED" in r.out
    assert f"{things[1]}: FAILED reason=selftest failed" in r.out
    assert "result: failed" in r.out


def test_local_backend_errors(local):
    fota, _ = local
    r = fota("status", "no-such-job")
    assert r.code == 2 and r.err.startswith("fota: error: no job 'no-such-job' on the local cloud")
    assert r.err.count("\n") == 1


def test_cloud_not_running_is_reported(tmp_path):
    env = base_env(tmp_path)
    fota = Fota(env, tmp_path)
    r = fota("status", "job-1")
    assert r.code == 1 and "fota cloud start" in r.err
    r = fota("cloud", "status")
    assert r.code == 3 and "not running" in r.out


def test_cloud_run_in_foreground(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    env = base_env(tmp_path)
    fota = Fota(env, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "fotatools.cli", "cloud", "run",
                             "--minute", "2"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = fota("cloud", "status", "--json")
            if r.code == 0:
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        assert r.code == 0, r.err
        assert json.loads(r.out)["minute"] == 2.0
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    assert rc == 0
    assert fota("cloud", "status").code == 3
