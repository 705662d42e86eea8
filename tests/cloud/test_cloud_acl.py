"""The broker's access control, exercised by real publishes: a thing may publish its own
telemetry and use its own stream topics, and nothing of another thing's; the jobs service may
use every thing's stream topics. Both ways the stand-in enforces it are run: mosquitto's
dynamic-security plugin and the ACL file used where the plugin is not installed.

Clients speak MQTT 5 here so that the broker says what it did with a publish in its PUBACK:
0 (delivered), 16 (allowed, nobody subscribed) or 135 (not authorized)."""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fotatools.cloud.broker import ADMIN_CN, Broker, dynsec_plugin
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.jobs import SERVICE_CN

DELIVERED, NO_SUBSCRIBERS, NOT_AUTHORIZED = 0, 16, 135
THINGS = ["t1", "t2"]


class Client:
    """An MQTT 5 client with a certificate of the broker's CA (CN = user name)."""

    def __init__(self, port: int, ca: LocalCA, folder: Path, cn: str) -> None:
        files = ca.existing(folder, cn) or ca.issue_client(cn, folder)
        ctx = ssl.create_default_context(cafile=str(ca.cert_path))
        ctx.load_cert_chain(str(files.cert_pem), str(files.key_pem))
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cn}-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.tls_set_context(ctx)
        self.cond = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self.acks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("localhost", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), f"{cn} could not connect"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.cond:
            self.messages.append((msg.topic, msg.payload))
            self.cond.notify_all()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self.cond:
            self.acks[mid] = rc.value
            self.cond.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        with self.cond:
            self.subacks[mid] = [r.value for r in reasons]
            self.cond.notify_all()

    def publish(self, topic: str, payload: str = "{}") -> int:
        """Publish at QoS 1; return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.acks, 10), "no PUBACK"
            return self.acks.pop(info.mid)

    def subscribe(self, topic: str) -> list[int]:
        _, mid = self.client.subscribe(topic, qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: mid in self.subacks, 10), "no SUBACK"
            return self.subacks.pop(mid)

    def until(self, topic: str, payload: str, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        """Wait for (topic, payload); return every message received before it, in order, and
        forget them all. A message published earlier by the same sender on a topic this client
        receives would be in the list: the broker keeps one sender's order."""
        want = (topic, payload.encode())
        with self.cond:
            assert self.cond.wait_for(lambda: want in self.messages, timeout), \
                f"{topic} never came; got {self.messages}"
            i = self.messages.index(want)
            before = self.messages[:i]
            del self.messages[:i + 1]
            return before

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module", params=["dynamic-security", "acl-file"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, LocalCA, Path]]:
    if request.param == "dynamic-security" and not dynsec_plugin():
        pytest.skip("mosquitto's dynamic-security plugin is not installed")
    folder = tmp_path_factory.mktemp(request.param)
    ca = LocalCA(folder / "ca").ensure()
    server = ca.issue_server(folder / "server")
    admin = ca.issue_client(ADMIN_CN, folder / "admin")
    b = Broker(folder / "broker", ca.cert_path, server.cert_pem, server.key_pem, admin.cert_pem, admin.key_pem)
    if request.param == "acl-file":
        b.plugin = None
    port = b.start(THINGS)
    try:
        yield port, ca, folder / "clients"
    finally:
        b.stop()


@pytest.fixture()
def clients(broker: tuple[int, LocalCA, Path]) -> Iterator[dict[str, Client]]:
    port, ca, folder = broker
    made = {cn: Client(port, ca, folder, cn) for cn in THINGS + [SERVICE_CN]}
    try:
        yield made
    finally:
        for c in made.values():
            c.close()


def test_a_thing_publishes_its_own_telemetry_only(clients):
    t1 = clients["t1"]
    assert t1.publish("things/t1/telemetry", json.dumps({"version": "1.0.0"})) == NO_SUBSCRIBERS
    assert t1.publish("things/t2/telemetry") == NOT_AUTHORIZED
    assert t1.publish("things/t1/other") == NOT_AUTHORIZED
    assert t1.publish("things/t1/telemetry/more") == NOT_AUTHORIZED
    assert clients["t2"].publish("things/t2/telemetry") == NO_SUBSCRIBERS


def test_stream_requests_reach_the_service_and_answers_reach_their_thing_only(clients):
    t1, t2, service = clients["t1"], clients["t2"], clients[SERVICE_CN]
    assert service.subscribe("$aws/things/+/streams/#") == [1]
    assert t1.subscribe("$aws/things/t1/streams/#") == [1]
    assert t2.subscribe("$aws/things/t2/streams/#") == [1]
    t2.subscribe("$aws/things/t1/streams/#")  # refused (dynamic security) or granted and empty (ACL file)

    # t1's request reaches the service ...
    get = "$aws/things/t1/streams/s1/get/json"
    assert t1.publish(get, '{"c": "one"}') == DELIVERED
    assert service.until(get, '{"c": "one"}') == []
    # ... t2 may not publish on t1's topics: the broker drops it, the service never sees it
    assert t2.publish(get, '{"c": "forged"}') == NOT_AUTHORIZED
    own = "$aws/things/t2/streams/s1/get/json"
    assert t2.publish(own, '{"c": "two"}') == DELIVERED
    assert service.until(own, '{"c": "two"}') == []  # t2's own request came, the forged one did not

    # The service answers on each thing's topics; t1's answer reaches t1 and not t2.
    data = "$aws/things/t1/streams/s1/data/json"
    assert service.publish(data, '{"c": "one", "i": 0}') == DELIVERED
    assert t1.until(data, '{"c": "one", "i": 0}') == [(get, b'{"c": "one"}')]  # its own request, echoed
    theirs = "$aws/things/t2/streams/s1/data/json"
    assert service.publish(theirs, '{"c": "two", "i": 0}') == DELIVERED
    assert t2.until(theirs, '{"c": "two", "i": 0}') == [(own, b'{"c": "two"}')]  # nothing of t1's


def test_a_thing_reaches_no_other_things_topics(clients):
    t1 = clients["t1"]
    for topic in ("$aws/things/t2/streams/s1/describe/json", "$aws/things/t2/jobs/get",
                  "$aws/things/t2/streams/s1/data/json", "things/t2/telemetry"):
        assert t1.publish(topic) == NOT_AUTHORIZED, topic
    assert t1.publish("$aws/things/t1/jobs/get") in (DELIVERED, NO_SUBSCRIBERS)
