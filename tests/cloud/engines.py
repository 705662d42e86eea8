"""A jobs engine on its own database, without a broker, for the tests of
tools/fotatools/cloud/jobs.py, and a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine


class Clock:
    """Seconds that pass only when a test sets `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def jobs_engine(folder: Path, things: tuple[str, ...] = ("a", "b", "c"), minute: float = 60.0,
                clock: Callable[[], float] | None = None) -> Iterator[JobsEngine]:
    """For a fixture (`yield from jobs_engine(tmp_path, ...)`): an engine with these things,
    its database closed after the test."""
    db = Database(folder / "cloud.db")
    kwargs = {"clock": clock} if clock is not None else {}
    e = JobsEngine(db, presign=lambda bucket, key, expires: "https://x", minute=minute, **kwargs)
    for t in things:
        e.create_thing(t)
    yield e
    db.close()
