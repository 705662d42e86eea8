"""tools/fotatools/cloud/client.py: when the local cloud does not answer where the backend last
found it, the backend forgets it and reads home/cloud/state.json again on its next call, so a
cloud restarted on another port (`fota cloud stop`, `fota cloud start`) is found without a new
backend; and a cloud that has stopped is then reported as not running. A home without the
control token is named in a clear error, and an error answer that is not JSON by its HTTP status."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fotatools.backend import BackendError
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.daemon import CloudInfo, Paths
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore


def info(home: Path, port: int, token: Path) -> CloudInfo:
    return CloudInfo(home=str(home), pid=0, mosquitto_pid=0, mqtt_host="localhost", mqtt_port=8883,
                     store_port=0, control_port=port, control_url=f"http://127.0.0.1:{port}",
                     token_path=str(token), ca_pem="", ca_der="", minute=60.0, started_at=0.0)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


@pytest.fixture()
def home(tmp_path: Path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    engine = JobsEngine(db, presign=store.presign, minute=60.0)
    engine.create_thing("t1")
    api = ControlApi(engine, store, None, "localhost", 8883)  # type: ignore[arg-type]
    server = ControlServer(api, "tok").start()
    token = tmp_path / "control.token"
    token.write_text("tok\n")
    try:
        yield tmp_path, server.port, token
    finally:
        server.stop()
        db.close()


def test_a_cloud_restarted_on_another_port_is_found_on_the_next_call(home):
    home_dir, port, token = home
    backend = LocalBackend(home_dir, timeout=10)
    backend._info = info(home_dir, closed_port(), token)  # where the cloud was before its restart
    state = Paths(home_dir).state
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(asdict(info(home_dir, port, token))))
    with pytest.raises(BackendError, match="the local cloud does not answer at"):
        backend.call("DescribeThing", {"thingName": "t1"})
    assert backend.call("DescribeThing", {"thingName": "t1"})["thingName"] == "t1"


def test_a_cloud_that_stopped_is_then_reported_as_not_running(home):
    home_dir, _, token = home
    backend = LocalBackend(home_dir, timeout=10)
    backend._info = info(home_dir, closed_port(), token)
    with pytest.raises(BackendError, match="the local cloud does not answer at"):
        backend.call("DescribeThing", {"thingName": "t1"})
    with pytest.raises(BackendError) as e:  # no state.json: the cloud is not running
        backend.call("DescribeThing", {"thingName": "t1"})
    assert str(e.value) == (f"the local cloud is not running on {home_dir} "
                            "(start it with `fota cloud start`)")


def test_a_cloud_without_its_control_token_is_a_clear_error(tmp_path: Path):
    backend = LocalBackend(tmp_path, timeout=10)
    backend._info = info(tmp_path, closed_port(), tmp_path / "control.token")  # no such file
    with pytest.raises(BackendError) as e:
        backend.call("DescribeThing", {"thingName": "t1"})
    assert str(e.value) == f"no control token in {tmp_path}: is the local cloud set up?"


class _NotJson(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"<html>bad gateway</html>"
        self.send_response(502)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_error_answer_that_is_not_json_is_named_by_its_http_status(tmp_path: Path):
    """Something else answering on the control port (a proxy's error page) is reported by its
    HTTP status, with no AWS error code."""
    token = tmp_path / "control.token"
    token.write_text("tok\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotJson)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        backend = LocalBackend(tmp_path, timeout=10)
        backend._info = info(tmp_path, server.server_address[1], token)
        with pytest.raises(BackendError) as e:
            backend.call("DescribeThing", {"thingName": "t1"})
    finally:
        server.shutdown()
        server.server_close()
    assert str(e.value) == "DescribeThing failed: HTTP 502"
    assert e.value.code is None
