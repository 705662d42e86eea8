"""A jobs engine on its own database, without a broker, for the tests of
tools/fotatools/cloud/jobs.py; the control API over one, for those of control.py; and a clock
the tests move by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from fotatools.cloud.control import ControlApi
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore


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


def control_api(folder: Path, things: tuple[str, ...] = ("a",)) -> Iterator[ControlApi]:
    """For a fixture (`yield from control_api(tmp_path, ...)`): the control API over a jobs
    engine and an object store of its own (no broker, no CA), with these things, its database
    closed after the test."""
    db = Database(folder / "cloud.db")
    store = ObjectStore(folder / "store", b"k" * 32)
    engine = JobsEngine(db, presign=store.presign, minute=60.0)
    for t in things:
        engine.create_thing(t)
    yield ControlApi(engine, store, None, "localhost", 8883)  # type: ignore[arg-type]
    db.close()
