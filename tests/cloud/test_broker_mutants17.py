"""The stand-in's broker process (tools/fotatools/cloud/broker.py): a broker a crashed run left
behind is recognised by its command line also when the state folder's path has a space in it,
and `pid` names the broker's process only while there is one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cloud.test_broker_mutants2 import STALE, stale_broker

from fotatools.cloud.broker import Broker, _cmdline


def test_a_stale_broker_in_a_folder_whose_path_has_a_space_is_stopped(tmp_path: Path):
    home = tmp_path / "my fota"  # e.g. a project under "~/My Projects"
    home.mkdir()
    with stale_broker(home, STALE) as (b, proc):
        assert " " in str(b.conf_path)
        b.kill_stale()
        proc.wait(5)  # stopped: its command line named this folder's config
        assert proc.returncode == 0
        assert not b.pid_path.exists()


def test_a_command_line_reads_as_its_arguments_joined_by_spaces(tmp_path: Path):
    code = "import sys; print(flush=True); sys.stdin.read()"  # says it runs, then waits
    proc = subprocess.Popen([sys.executable, "-c", code, "a b", "c"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"\n"
        assert _cmdline(proc.pid) == f"{sys.executable} -c {code} a b c "
    finally:
        proc.communicate(b"", timeout=10)


def test_pid_is_the_running_brokers_and_none_without_one(tmp_path: Path):
    b = Broker(tmp_path / "broker", tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    b.folder.mkdir(parents=True)
    assert b.pid is None  # never started
    # a process in mosquitto's place: pid and stop() look only at the child they hold
    b.proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert b.pid == b.proc.pid
        b.stop()
        assert b.pid is None  # stopped
    finally:
        if b.proc is not None:
            b.proc.kill()
            b.proc.wait(10)
