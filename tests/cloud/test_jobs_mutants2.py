"""tools/fotatools/cloud/jobs.py's JobsService as the stand-in runs it: started by
daemon.run() (`JobsService(...).start()` is the running service) and stopped with it."""

from __future__ import annotations

import logging
import threading

from tests.cloud.test_daemon_mutants2 import running

JOBS_THREADS = ("jobs-worker", "jobs-timer", "streams-worker")


def jobs_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in JOBS_THREADS]


def test_the_jobs_service_runs_with_the_stand_in_and_stops_with_it(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="fotatools")
    assert jobs_threads() == []
    with running(tmp_path / "home"):
        assert sorted(jobs_threads()) == sorted(JOBS_THREADS)
    assert jobs_threads() == [], "the jobs service was not stopped"
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
