"""tools/fotatools/cloud/broker.py: starting the broker first stops the mosquitto a crashed run
left running on this folder's configuration (its pid kept in the folder), so two brokers never
serve one folder."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from fotatools.cloud.broker import Broker, _pid_alive
from fotatools.cloud.ca import LocalCA


def test_start_stops_the_broker_a_crashed_run_left_on_this_folder(tmp_path: Path):
    ca = LocalCA(tmp_path / "ca").ensure()
    server = ca.issue_server(tmp_path / "server")
    b = Broker(tmp_path / "broker", ca.cert_path, server.cert_pem, server.key_pem)
    b.pid_path.parent.mkdir(parents=True, exist_ok=True)
    # the left-over: a process whose command line names this folder's configuration, as
    # `mosquitto -c <conf>` does, its pid where the crashed run recorded it
    stale = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-c", str(b.conf_path)])
    threading.Thread(target=stale.wait, daemon=True).start()  # reaped as soon as it ends
    b.pid_path.write_text(f"{stale.pid}\n")
    try:
        b.start([])
        assert stale.wait(timeout=1) is not None  # kill_stale waits for it to end
        assert not _pid_alive(stale.pid)
        assert b.pid_path.read_text().strip() == str(b.proc.pid)
    finally:
        b.stop()
        stale.kill()
