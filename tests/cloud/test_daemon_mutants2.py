"""tools/fotatools/cloud/daemon.py's run(), in a thread: stopping it stops every part it
started, so their ports are free again and their threads end."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fotatools.cloud import daemon


@contextmanager
def running(home: Path) -> Iterator[dict[str, Any]]:
    """daemon.run(home) in a thread (loopback only) until the block ends; yields its ports."""
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(home,), name="stand-in",
                              kwargs={"stop_event": stop, "hosts": []})
    thread.start()
    paths = daemon.Paths(home)
    deadline = time.monotonic() + 30
    try:
        while not paths.state.exists():
            assert thread.is_alive(), "the stand-in stopped at its start"
            assert time.monotonic() < deadline, "the stand-in did not start"
            time.sleep(0.02)
        yield json.loads(paths.ports.read_text())
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the stand-in did not stop"


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_stopping_the_stand_in_stops_every_part_it_started(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="fotatools")
    with running(tmp_path / "home") as ports:
        for name in ("mqtt", "store", "control"):
            assert not refused(ports[name]), f"{name} is not listening"
    for name in ("mqtt", "store", "control"):
        assert refused(ports[name]), f"the {name} port is still open after the stand-in stopped"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [t.name for t in threading.enumerate()
                if t.name in ("store", "control", "jobs-worker", "jobs-timer", "streams-worker")]
