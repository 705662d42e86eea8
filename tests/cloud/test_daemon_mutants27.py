"""tools/fotatools/cloud/daemon.py, in this process (nothing is started; the launch of the
background run is faked):
- `start` on a folder whose stand-in already runs returns that one when asked for the hosts it
  already has (or for none), and refuses only other hosts;
- a bad FOTA_CLOUD_MINUTE (in the environment, or given as `minute`) is refused with its reason
  before anything is launched;
- `python -m fotatools.cloud.daemon start` starts the stand-in and prints where it listens;
  `stop` and `status` never start one."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud import daemon


def info(tmp_path: Path, hosts: list[str]) -> daemon.CloudInfo:
    return daemon.CloudInfo(home=str(tmp_path), pid=1234, mosquitto_pid=1235, mqtt_host="localhost",
                            mqtt_port=8883, store_port=8443, control_port=8080,
                            control_url="http://127.0.0.1:8080", token_path=str(tmp_path / "token"),
                            ca_pem=str(tmp_path / "ca.pem"), ca_der=str(tmp_path / "ca.der"),
                            minute=60.0, started_at=1000.0, hosts=hosts)


class Launches:
    """A launched daemon that exits at once; counts the launches."""

    count = 0

    def __init__(self, argv: list[str], **_: Any) -> None:
        Launches.count += 1
        self.pid = 0
        self.returncode = 1

    def poll(self) -> int:
        return self.returncode


@pytest.mark.parametrize("asked", [["build-box.lan", "10.0.0.5"], ["Build-Box.LAN.", "10.0.0.5"], None])
def test_start_returns_the_running_stand_in_when_asked_for_its_own_hosts(tmp_path: Path, monkeypatch, asked):
    running = info(tmp_path, ["build-box.lan", "10.0.0.5"])
    monkeypatch.setattr(daemon, "_running_info", lambda home: running)
    Launches.count = 0
    monkeypatch.setattr(daemon.subprocess, "Popen", Launches)
    assert daemon.start(tmp_path, hosts=asked) is running
    assert Launches.count == 0


@pytest.mark.parametrize("asked", [["build-box.lan"], ["other.lan", "10.0.0.5", "build-box.lan"], []])
def test_start_refuses_other_hosts_than_those_of_the_running_stand_in(tmp_path: Path, monkeypatch, asked):
    monkeypatch.setattr(daemon, "_running_info", lambda home: info(tmp_path, ["build-box.lan", "10.0.0.5"]))
    with pytest.raises(daemon.CloudConflict, match="with hosts build-box.lan, 10.0.0.5 is already running"):
        daemon.start(tmp_path, hosts=asked)


@pytest.mark.parametrize("env, minute, reason", [
    ("soon", None, "FOTA_CLOUD_MINUTE must be a number of seconds, not 'soon'"),
    ("0", None, r"FOTA_CLOUD_MINUTE must be in \(0, 3600\]"),
    (None, 0, r"FOTA_CLOUD_MINUTE must be in \(0, 3600\]"),
    (None, 3600.5, r"FOTA_CLOUD_MINUTE must be in \(0, 3600\]"),
])
def test_a_bad_minute_is_refused_before_anything_is_launched(tmp_path: Path, monkeypatch, env, minute, reason):
    if env is None:
        monkeypatch.delenv("FOTA_CLOUD_MINUTE", raising=False)
    else:
        monkeypatch.setenv("FOTA_CLOUD_MINUTE", env)
    Launches.count = 0
    monkeypatch.setattr(daemon.subprocess, "Popen", Launches)
    with pytest.raises(daemon.CloudError, match=reason):
        daemon.start(tmp_path, minute=minute, timeout=5)
    assert Launches.count == 0
    assert daemon.os.environ.get("FOTA_CLOUD_MINUTE") == env  # this process's setting is left as it was


def test_the_start_command_starts_the_stand_in_and_prints_where_it_listens(tmp_path: Path, monkeypatch, capsys):
    started = info(tmp_path, [])
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(daemon, "start", lambda home, minute, hosts=None: calls.append((home, minute, hosts)) or started)
    assert daemon.main(["start", "--home", str(tmp_path), "--minute", "2"]) == 0
    assert calls == [(tmp_path, 2.0, None)]
    assert json.loads(capsys.readouterr().out) == asdict(started)


@pytest.mark.parametrize("command, prints", [("stop", "not running\n"), ("status", None)])
def test_the_stop_and_status_commands_start_nothing(tmp_path: Path, monkeypatch, capsys, command, prints):
    def no_start(*_: Any, **__: Any) -> None:
        raise AssertionError("started")

    monkeypatch.setattr(daemon, "start", no_start)
    assert daemon.main([command, "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    if prints is not None:
        assert out == prints
    else:
        assert json.loads(out)["running"] is False
