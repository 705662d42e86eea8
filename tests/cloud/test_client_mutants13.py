"""The local backend (tools/fotatools/cloud/client.py) against a control API that lacks an
operation: a stand-in started by an older fota is named as such, with what to do about it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.backend import BackendError
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.daemon import CloudInfo
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore


@pytest.fixture()
def backend(tmp_path: Path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    api = ControlApi(JobsEngine(db, presign=store.presign, minute=60.0), store, None,  # type: ignore[arg-type]
                     "localhost", 8883)
    del api.ops["ListJobTargets"]  # as a stand-in from before that operation has it
    server = ControlServer(api, "tok").start()
    token = tmp_path / "control.token"
    token.write_text("tok\n")
    b = LocalBackend(tmp_path, timeout=10)
    b._info = CloudInfo(home=str(tmp_path), pid=0, mosquitto_pid=0, mqtt_host="localhost", mqtt_port=8883,
                        store_port=0, control_port=server.port, control_url=f"http://127.0.0.1:{server.port}",
                        token_path=str(token), ca_pem="", ca_der="", minute=60.0, started_at=0.0)
    try:
        yield b
    finally:
        server.stop()
        db.close()


def test_an_operation_the_running_stand_in_lacks_says_to_restart_it(backend: LocalBackend):
    with pytest.raises(BackendError) as e:
        backend.call("ListJobTargets", {"jobId": "j"})
    assert str(e.value) == (f"the local cloud running on {backend.home} is older than this fota (it "
                            "has no ListJobTargets): restart it with `fota cloud stop` and "
                            "`fota cloud start`")
    assert e.value.code == "UnknownOperationException"
    # any other refusal is the operation's own message
    with pytest.raises(BackendError) as e:
        backend.call("DescribeThing", {"thingName": "ghost"})
    assert str(e.value) == "DescribeThing failed: ResourceNotFoundException: Thing ghost does not exist"
