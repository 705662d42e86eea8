"""A jobs engine on its own database, without a broker, for the tests of
tools/fotatools/cloud/jobs.py; the control API over one, for those of control.py, and the local
backend talking to it over HTTP, for those of client.py; a streams engine, for those of
streams.py; a shadow engine, for those of shadow.py; and a clock the tests move by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fotatools.cloud import cbor
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.daemon import CloudInfo
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.shadow import ShadowEngine
from fotatools.cloud.store import ObjectStore
from fotatools.cloud.streams import StreamsEngine


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


def local_backend(folder: Path, things: tuple[str, ...] = (),
                  change: Callable[[ControlApi], None] = lambda api: None
                  ) -> Iterator[tuple[LocalBackend, JobsEngine]]:
    """For a fixture: a LocalBackend talking HTTP to a control server over control_api(folder,
    things) (after `change(api)`), as if a stand-in were running there; the server stopped and
    the database closed after the test."""
    for api in control_api(folder, things):
        change(api)
        server = ControlServer(api, "tok").start()
        token = folder / "control.token"
        token.write_text("tok\n")
        b = LocalBackend(folder, timeout=10)
        b._info = CloudInfo(home=str(folder), pid=0, mosquitto_pid=0, mqtt_host="localhost", mqtt_port=8883,
                            store_port=0, control_port=server.port,
                            control_url=f"http://127.0.0.1:{server.port}", token_path=str(token),
                            ca_pem="", ca_der="", minute=60.0, started_at=0.0)
        try:
            yield b, api.engine
        finally:
            server.stop()


def streams_engine(folder: Path, data: bytes | None = None, file_id: int | None = None,
                   record: bool = False) -> Iterator[StreamsEngine]:
    """For a fixture: a streams engine over a store of its own holding `data` (if given) as
    bucket/f.bin; with `file_id`, a stream "s1" of that file; with `record`, every answer it
    publishes kept in engine.sent as (topic, decoded payload). Its database closed after."""
    db = Database(folder / "cloud.db")
    store = ObjectStore(folder / "store", b"k" * 32)
    if data is not None:
        store.put("bucket", "f.bin", data)
    sent: list[tuple[str, Any]] = []

    def publish(topic: str, payload: bytes) -> None:
        sent.append((topic, json.loads(payload) if topic.endswith("json") else cbor.loads(payload)))

    e = StreamsEngine(db, store, publish=publish) if record else StreamsEngine(db, store)
    if file_id is not None:
        e.create_stream({"streamId": "s1", "roleArn": "arn:aws:iam::123456789012:role/r",
                         "files": [{"fileId": file_id, "s3Location": {"bucket": "bucket", "key": "f.bin"}}]})
    e.sent = sent  # type: ignore[attr-defined]
    yield e
    db.close()


def shadow_engine(folder: Path, now: float = 1_750_000_000.0
                  ) -> Iterator[tuple[ShadowEngine, list[tuple[str, Any]]]]:
    """For a fixture: a shadow engine on a database of its own whose clock says `now`, and the
    list of what it publishes, as (topic, JSON payload); its database closed after the test."""
    db = Database(folder / "db.sqlite")
    sent: list[tuple[str, Any]] = []
    yield ShadowEngine(db, lambda t, p: sent.append((t, json.loads(p))), clock=lambda: now), sent
    db.close()
