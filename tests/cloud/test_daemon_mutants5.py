"""tools/fotatools/cloud/daemon.py's run(), in a thread: when mosquitto exits on its own, the
stand-in says so and stops (every part), instead of running on without a broker."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

from fotatools.cloud import daemon


def test_the_stand_in_stops_when_mosquitto_exits(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="fotatools")
    home = tmp_path / "home"
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(home,), name="stand-in",
                              kwargs={"stop_event": stop, "hosts": []})
    thread.start()
    paths = daemon.Paths(home)
    try:
        deadline = time.monotonic() + 30
        while not paths.state.exists():
            assert thread.is_alive(), "the stand-in stopped at its start"
            assert time.monotonic() < deadline, "the stand-in did not start"
            time.sleep(0.02)
        pid = json.loads(paths.state.read_text())["mosquitto_pid"]
        assert pid > 0
        os.kill(pid, signal.SIGKILL)
        thread.join(10)  # the stand-in looks every half second
        assert not thread.is_alive(), "the stand-in runs on without its broker"
    finally:
        stop.set()
        thread.join(30)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"mosquitto exited ({-signal.SIGKILL}); stopping"]
    assert not paths.state.exists() and not paths.pid.exists()
    assert any(r.getMessage() == "local cloud stopped" for r in caplog.records)
