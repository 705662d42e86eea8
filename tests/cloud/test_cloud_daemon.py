"""Starting, stopping and restarting the stand-in; state that survives a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.cloud.conftest import Device, unique, wait_until

from fotatools.backend import BackendError
from fotatools.cloud import daemon
from fotatools.cloud.broker import _pid_alive
from fotatools.cloud.client import LocalBackend


def gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not _pid_alive(pid)


def test_start_twice_stop_twice(tmp_path: Path):
    info = daemon.start(tmp_path)
    try:
        assert daemon.start(tmp_path).pid == info.pid
        st = daemon.status(tmp_path)
        assert st["running"] and st["mqtt_port"] == info.mqtt_port and st["service"]["things"] == 0
        assert Path(info.ca_pem).is_file() and Path(info.ca_der).is_file()
        assert (tmp_path / "cloud" / "state.json").is_file()
        with pytest.raises(daemon.CloudError, match="already running"):
            daemon.start(tmp_path, minute=0.5)
        with pytest.raises(daemon.CloudError, match="already running"):
            daemon.run(tmp_path, stop_event=threading.Event())
    finally:
        assert daemon.stop(tmp_path) is True
    assert wait_until(lambda: gone(info.pid) and gone(info.mosquitto_pid), what="processes gone")
    assert daemon.stop(tmp_path) is False
    assert daemon.status(tmp_path)["running"] is False
    assert not (tmp_path / "cloud" / "state.json").exists()
    with pytest.raises(BackendError, match="not running"):
        LocalBackend(tmp_path).endpoint()


def test_start_after_a_crash(tmp_path: Path):
    info = daemon.start(tmp_path)
    os.kill(info.pid, signal.SIGKILL)
    wait_until(lambda: gone(info.pid), what="daemon killed")
    assert daemon.status(tmp_path) == {"running": False, "home": str(tmp_path.resolve() / "cloud"),
                                       "stale": True}
    info2 = daemon.start(tmp_path)
    try:
        assert info2.pid != info.pid
        wait_until(lambda: gone(info.mosquitto_pid), what="old broker gone")
        assert LocalBackend(tmp_path).call("Status")["things"] == 0
    finally:
        daemon.stop(tmp_path)


def test_an_owned_cloud_stops_with_its_owner(tmp_path: Path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc = subprocess.Popen([sys.executable, "-m", daemon.MODULE, "run", "--home", str(tmp_path),
                                 "--owner-pid", str(owner.pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_env())
        wait_until(lambda: daemon.status(tmp_path)["running"], what="running")
        broker_pid = daemon.status(tmp_path)["mosquitto_pid"]
        owner.kill()
        owner.wait()
        assert proc.wait(timeout=15) == 0
        assert daemon.status(tmp_path)["running"] is False
        assert wait_until(lambda: gone(broker_pid), what="broker gone")
    finally:
        owner.kill()
        owner.wait()
        daemon.stop(tmp_path)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(daemon.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def test_bad_minute_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FOTA_CLOUD_MINUTE", "soon")
    with pytest.raises(daemon.CloudError, match="FOTA_CLOUD_MINUTE"):
        daemon.start(tmp_path)
    monkeypatch.delenv("FOTA_CLOUD_MINUTE")
    with pytest.raises(daemon.CloudError, match="FOTA_CLOUD_MINUTE"):
        daemon.start(tmp_path, minute=-1)
    assert daemon.status(tmp_path)["running"] is False


def test_restart_with_jobs_in_flight(tmp_path: Path):
    daemon.start(tmp_path, minute=1.0)
    backend = LocalBackend(tmp_path)
    try:
        busy, late, other = (backend.provision(unique(p)) for p in ("busy", "late", "other"))
        roll = [backend.provision(unique("roll")).thing_name for _ in range(3)]
        backend.call("CreateJob", {"jobId": "long", "targets": [backend.thing_arn(busy.thing_name)],
                                   "document": '{"op": "long"}'})
        backend.call("CreateJob", {"jobId": "short", "targets": [backend.thing_arn(late.thing_name)],
                                   "document": '{"op": "short"}'})
        backend.call("CreateJob", {"jobId": "roll", "targets": [backend.thing_arn(t) for t in roll],
                                   "document": '{"op": "roll"}',
                                   "jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})
        d = Device(busy, tmp_path / "d1")
        d.request("start-next", {"stepTimeoutInMinutes": 30, "statusDetails": {"phase": "download"}})
        d.request("long/update", {"status": "IN_PROGRESS", "statusDetails": {"phase": "flash"}})
        d.close()
        d2 = Device(late, tmp_path / "d2")
        d2.request("start-next", {"stepTimeoutInMinutes": 1})
        d2.close()
        assert len(backend.list_executions("roll")) == 1
    finally:
        daemon.stop(tmp_path)
    time.sleep(1.5)  # the short job's step timer runs out while the service is down
    info = daemon.start(tmp_path, minute=1.0)
    backend = LocalBackend(tmp_path)
    try:
        assert backend.endpoint().port == info.mqtt_port
        d = Device(busy, tmp_path / "d1", port=info.mqtt_port)
        ex = d.request("long/get")[1]["execution"]
        assert ex["status"] == "IN_PROGRESS" and ex["versionNumber"] == 3
        assert ex["statusDetails"] == {"phase": "flash"} and ex["jobDocument"] == {"op": "long"}
        assert d.request("long/update", {"status": "SUCCEEDED", "expectedVersion": 3})[0] == "accepted"
        assert backend.describe_job("long").status == "COMPLETED"
        # the broker still keeps things to their own topics
        assert d.subscribe(f"$aws/things/{late.thing_name}/jobs/#") == [128]
        ex = backend.call("DescribeJobExecution", {"jobId": "short", "thingName": late.thing_name})
        assert ex["execution"]["status"] == "TIMED_OUT"
        wait_until(lambda: len(backend.list_executions("roll")) == 3, timeout=10, what="rollout resumes")
        # a thing provisioned before the restart connects and hears of new jobs
        o = Device(other, tmp_path / "d3", port=info.mqtt_port)
        backend.call("CreateJob", {"jobId": "after", "targets": [backend.thing_arn(other.thing_name)],
                                   "document": "{}"})
        assert o.event("notify-next")["execution"]["jobId"] == "after"
        d.close()
        o.close()
    finally:
        daemon.stop(tmp_path)


def test_a_restart_keeps_the_ports(tmp_path: Path):
    # Devices keep the endpoint they were provisioned with: after a restart the stand-in
    # listens where it did before (when those ports are still free).
    first = daemon.start(tmp_path)
    try:
        ports = (first.mqtt_port, first.store_port, first.control_port)
    finally:
        daemon.stop(tmp_path)
    again = daemon.start(tmp_path)
    try:
        assert (again.mqtt_port, again.store_port, again.control_port) == ports
    finally:
        daemon.stop(tmp_path)
