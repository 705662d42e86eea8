"""tools/fotatools/cloud/daemon.py: `start` hands the hosts it was given to the background
`run` it launches (checked and normalised; [] as loopback only; None as "those of the last
start"), without starting anything: the launch is recorded and the recorded command line is
read back by the daemon's own argument parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fotatools.cloud import daemon


class Exited:
    """A launched daemon that exits at once, recording its command line."""

    argv: list[str] = []

    def __init__(self, argv: list[str], **_: Any) -> None:
        Exited.argv = list(argv)
        self.pid = 0
        self.returncode = 1

    def poll(self) -> int:
        return self.returncode


@pytest.mark.parametrize("hosts, run_gets", [
    (["Build-Box.LAN.", "10.0.0.5", "build-box.lan"], ["build-box.lan", "10.0.0.5"]),
    ([], []),
    (None, None),
])
def test_start_hands_its_hosts_to_the_run_it_launches(tmp_path: Path, monkeypatch, hosts, run_gets):
    monkeypatch.setattr(daemon.subprocess, "Popen", Exited)
    with pytest.raises(daemon.CloudError, match="exited at start"):
        daemon.start(tmp_path, hosts=hosts, timeout=5)
    assert Exited.argv[1:4] == ["-m", daemon.MODULE, "run"]
    got: dict[str, Any] = {}
    monkeypatch.setattr(daemon, "run", lambda home, minute, owner_pid=None, hosts=None: got.update(hosts=hosts))
    assert daemon.main(Exited.argv[3:]) == 0
    assert got == {"hosts": run_gets}
