"""tools/fotatools/cloud/daemon.py's run(), in a thread, with `hosts`: devices are told the first
name (the MQTT host in the state file and the SNTP address), not `localhost`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from fotatools.cloud import daemon


def test_devices_are_told_the_first_host_name(tmp_path: Path):
    home = tmp_path / "home"
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(home,), name="stand-in",
                              kwargs={"stop_event": stop, "hosts": ["127.0.0.2", "fota-host.example"]})
    thread.start()
    paths = daemon.Paths(home)
    deadline = time.monotonic() + 30
    try:
        while not paths.state.exists():
            assert thread.is_alive(), "the stand-in stopped at its start"
            assert time.monotonic() < deadline, "the stand-in did not start"
            time.sleep(0.02)
        state = json.loads(paths.state.read_text())
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the stand-in did not stop"
    assert state["hosts"] == ["127.0.0.2", "fota-host.example"] and state["bind"] == "0.0.0.0"
    assert state["mqtt_host"] == "127.0.0.2"
    port = state["ntp_bind"][1]
    assert state["ntp"] == ("127.0.0.2" if port == 123 else f"127.0.0.2:{port}")
