"""The stand-in's broker process (tools/fotatools/cloud/broker.py): stop() of a Broker that has
no mosquitto of its own (never started, or already stopped) does nothing, and leaves the pid file
of a broker it did not start to kill_stale."""

from __future__ import annotations

from pathlib import Path

from fotatools.cloud.broker import Broker


def test_stop_without_a_broker_of_its_own_does_nothing(tmp_path: Path):
    b = Broker(tmp_path / "broker", tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    b.folder.mkdir(parents=True)
    b.pid_path.write_text("4194304\n")  # a crashed run's broker: kill_stale's to check and stop
    b.stop()
    b.stop()
    assert b.proc is None and b.pid_path.read_text() == "4194304\n"
