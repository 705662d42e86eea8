"""The stand-in's foreground process (tools/fotatools/cloud/daemon.py run) when it fails to start:
the error that stopped it is the one raised, the database it opened is closed, and the folder's
lock is let go, so that the next start can take it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fotatools.cloud import daemon
from fotatools.cloud.db import Database


def run(home: Path) -> None:
    daemon.run(home, minute=60.0, stop_event=threading.Event(), hosts=[])


def test_a_failure_before_the_database_is_opened_is_the_error_raised(tmp_path: Path):
    paths = daemon.Paths(tmp_path)
    paths.root.mkdir(parents=True)
    paths.ca.write_text("")  # a file where the CA's folder goes
    for _ in range(2):  # the lock was let go: the second start fails the same way
        with pytest.raises(FileExistsError):
            run(tmp_path)
    assert not paths.pid.exists() and not paths.state.exists()


def test_a_failure_after_the_database_is_opened_closes_it(tmp_path: Path, monkeypatch):
    opened: list[Database] = []
    closed: list[Database] = []

    class Recorded(Database):
        def __init__(self, path: Path | str) -> None:
            super().__init__(path)
            opened.append(self)

        def close(self) -> None:
            closed.append(self)
            super().close()

    monkeypatch.setattr(daemon, "Database", Recorded)
    paths = daemon.Paths(tmp_path)
    paths.root.mkdir(parents=True)
    paths.broker.write_text("")  # a file where the broker's folder (and its CRL) goes
    with pytest.raises(OSError):
        run(tmp_path)
    assert len(opened) == 1 and closed == opened
