"""The local backend (tools/fotatools/cloud/client.py) lists a job's executions through the
stand-in's control API: each execution names its thing (the last part of the thingArn that
ListJobExecutionsForJob gives, as on AWS IoT), with its status and numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.cloud.client import LocalBackend
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.daemon import CloudInfo
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine, thing_arn
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


def test_each_execution_names_its_thing(setup):
    backend, engine = setup
    things = ["sensor-1", "a:b_c-2", "x"]  # the characters a thing name may have
    for t in things:
        engine.create_thing(t)
    engine.create_job({"jobId": "j", "targets": [thing_arn(t) for t in things], "document": {}})
    execs = backend.list_executions("j")
    assert sorted(e.thing_name for e in execs) == sorted(things)
    assert all(e.job_id == "j" and e.status == "QUEUED" and e.execution_number == 1 for e in execs)
