"""Fixtures for the local AWS IoT stand-in: one running cloud per test session (a one-second
Jobs minute) and devices played by paho-mqtt clients over real TLS through mosquitto."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fotatools.backend import ThingCredentials
from fotatools.cloud import daemon
from fotatools.cloud.client import LocalBackend

MINUTE = 1.0  # seconds in one Jobs minute for these tests


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mqtt_connect(cloud: Any, folder: Path, cert: bytes | None, key: bytes | None,
                 ca_pem: str | None = None) -> str:
    """One MQTT connection over TLS with this client certificate (or none): "connected", or
    "refused: <why>"."""
    ctx = ssl.create_default_context(cafile=ca_pem or cloud.ca_pem)
    if cert is not None and key is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "c.pem").write_bytes(cert)
        (folder / "k.pem").write_bytes(key)
        ctx.load_cert_chain(str(folder / "c.pem"), str(folder / "k.pem"))
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("probe"))
    c.tls_set_context(ctx)
    try:
        c.connect("localhost", cloud.mqtt_port, keepalive=10)
        for _ in range(100):
            c.loop(0.05)
            if c.is_connected():
                return "connected"
        return "no CONNACK"
    except ssl.SSLError as e:
        return f"refused: {e.reason}"
    except OSError as e:
        return f"refused: {type(e).__name__}"
    finally:
        c.disconnect()


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Device:
    """A thing on the broker: MQTT 3.1.1 (as umqtt speaks it), client id = thing name."""

    def __init__(self, creds: ThingCredentials, folder: Path, subscribe: str | None = "#",
                 client_id: str | None = None, port: int | None = None):
        self.name = creds.thing_name
        self.base = f"$aws/things/{self.name}/jobs"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cert.pem").write_bytes(creds.certificate_pem)
        (folder / "key.pem").write_bytes(creds.private_key_pem)
        (folder / "ca.pem").write_bytes(creds.endpoint.ca_pem)
        ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        ctx.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or self.name,
                                  protocol=mqtt.MQTTv311)
        self.client.tls_set_context(ctx)
        self.cond = threading.Condition()
        self.messages: list[tuple[str, Any]] = []
        self.subacks: dict[int, list[int]] = {}
        self.connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("localhost", port or creds.endpoint.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "device could not connect"
        if subscribe:
            codes = self.subscribe(f"{self.base}/{subscribe}")
            assert codes == [1], codes

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body: Any = json.loads(msg.payload)
        except ValueError:
            body = msg.payload
        with self.cond:
            self.messages.append((msg.topic, body))
            self.cond.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        with self.cond:
            self.subacks[mid] = [r.value for r in reasons]
            self.cond.notify_all()

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """Subscribe; return the SUBACK codes (128 = refused)."""
        _, mid = self.client.subscribe(topic, qos)
        with self.cond:
            assert self.cond.wait_for(lambda: mid in self.subacks, 10), "no SUBACK"
            return self.subacks[mid]

    def publish(self, topic: str, payload: bytes | str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def take(self, predicate: Callable[[str, Any], bool], timeout: float = 5.0) -> tuple[str, Any]:
        """Remove and return the first message matching predicate (waiting for it)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, (t, b) in enumerate(self.messages):
                    if predicate(t, b):
                        return self.messages.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no matching message; have "
                                         f"{[t for t, _ in self.messages]}")
                self.cond.wait(left)

    def request(self, suffix: str, payload: Any = None, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        """Publish a Jobs request; return ("accepted" | "rejected", body)."""
        topic = f"{self.base}/{suffix}"
        if payload is None:
            payload = {}
        token = None
        if isinstance(payload, dict):
            payload = dict(payload)
            token = payload.setdefault("clientToken", uuid.uuid4().hex[:16])
            raw: bytes = json.dumps(payload).encode()
        elif isinstance(payload, str):
            raw = payload.encode()
        else:
            raw = payload
        self.publish(topic, raw)

        def match(t: str, b: Any) -> bool:
            if t not in (topic + "/accepted", topic + "/rejected"):
                return False
            return token is None or (isinstance(b, dict) and b.get("clientToken") == token)

        t, body = self.take(match, timeout)
        return t.rsplit("/", 1)[1], body

    def event(self, kind: str, timeout: float = 5.0,
              where: Callable[[dict[str, Any]], bool] = lambda b: True) -> dict[str, Any]:
        """Wait for a notify / notify-next event."""
        return self.take(lambda t, b: t == f"{self.base}/{kind}" and where(b), timeout)[1]

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self.cond:
            return [b for t, b in self.messages if t == f"{self.base}/{kind}"]

    def clear(self) -> None:
        with self.cond:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="session")
def cloud_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("fota-home")
    info = daemon.start(home, minute=MINUTE, owned=True)
    yield home, info
    daemon.stop(home)


@pytest.fixture(scope="session")
def cloud(cloud_home) -> daemon.CloudInfo:
    return cloud_home[1]


@pytest.fixture(scope="session")
def backend(cloud_home) -> LocalBackend:
    return LocalBackend(cloud_home[0])


@pytest.fixture
def make_device(backend: LocalBackend, tmp_path: Path):
    devices: list[Device] = []

    def make(prefix: str = "thing", **kw: Any) -> Device:
        name = kw.pop("name", None) or unique(prefix)
        creds = backend.provision(name)
        d = Device(creds, tmp_path / name, **kw)
        devices.append(d)
        return d

    yield make
    for d in devices:
        d.close()


@pytest.fixture
def firmware_url(backend: LocalBackend, tmp_path: Path) -> str:
    fw = tmp_path / "fw.bin"
    fw.write_bytes(bytes(range(256)) * 64)
    return backend.upload(fw, f"{unique('fw')}/firmware.bin")
