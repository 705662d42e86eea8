"""The local backend (tools/fotatools/cloud/client.py) says which job, thing or group a user
named does not exist: NotFound carries the kind and the name, and its one-line message says both
and where (the local cloud)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.backend import NotFound
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.daemon import CloudInfo
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore


@pytest.fixture()
def setup(tmp_path: Path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    engine = JobsEngine(db, presign=store.presign, minute=60.0)
    api = ControlApi(engine, store, None, "localhost", 8883)  # type: ignore[arg-type]
    server = ControlServer(api, "tok").start()
    token = tmp_path / "control.token"
    token.write_text("tok\n")
    b = LocalBackend(tmp_path, timeout=10)
    b._info = CloudInfo(home=str(tmp_path), pid=0, mosquitto_pid=0, mqtt_host="localhost", mqtt_port=8883,
                        store_port=0, control_port=server.port, control_url=f"http://127.0.0.1:{server.port}",
                        token_path=str(token), ca_pem="", ca_der="", minute=60.0, started_at=0.0)
    try:
        yield b, engine
    finally:
        server.stop()
        db.close()


@pytest.mark.parametrize("kind, ask", [
    ("thing", lambda b: b.thing_arn("ghost")),
    ("group", lambda b: b.group_arn("ghost")),
    ("job", lambda b: b.describe_job("ghost")),
])
def test_a_name_that_does_not_exist_is_not_found_on_the_local_cloud(setup, kind, ask):
    backend, _ = setup
    with pytest.raises(NotFound) as e:
        ask(backend)
    assert (e.value.kind, e.value.name, e.value.code) == (kind, "ghost", "ResourceNotFoundException")
    assert str(e.value) == f"no {kind} 'ghost' on the local cloud"
