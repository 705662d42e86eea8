"""The broker is as strict as AWS IoT where a device could otherwise disturb others or forge the
service's messages: the client id is the certificate's thing, only the service publishes its
replies and events, no retained messages, no QoS 2."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from tests.cloud.conftest import Device, unique

from fotatools.backend import Endpoint, ThingCredentials
from fotatools.cloud.broker import ADMIN_CN, Broker
from fotatools.cloud.ca import LocalCA


def create(backend, job_id: str, thing: str) -> None:
    backend.call("CreateJob", {"jobId": job_id, "targets": [backend.thing_arn(thing)],
                               "document": json.dumps({"operation": "test"})})


class Watched(Device):
    """A device that records when the broker closes its connection."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.gone = threading.Event()
        super().__init__(*args, **kw)
        self.client.on_disconnect = lambda c, u, flags, rc, p: self.gone.set()
        self.client.reconnect_delay_set(min_delay=60, max_delay=60)  # no quick comeback


@pytest.fixture
def connect(backend, tmp_path: Path) -> Iterator[Any]:
    """connect(creds, **kw) -> a Watched device; every one is closed at the end."""
    made: list[Device] = []

    def make(creds: ThingCredentials, **kw: Any) -> Watched:
        d = Watched(creds, tmp_path / uuid.uuid4().hex[:8], **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_a_certificate_cannot_take_another_things_client_id(backend, connect):
    b = connect(backend.provision(unique("b")))
    a_creds = backend.provision(unique("a"))
    # Thing A's certificate asking for B's client id: the broker binds the connection to A.
    intruder = connect(a_creds, client_id=b.name, subscribe=None)
    assert intruder.subscribe(f"$aws/things/{b.name}/jobs/#") == [128]
    assert intruder.subscribe(f"$aws/things/{a_creds.thing_name}/jobs/#") == [1]
    assert intruder.request("get")[0] == "accepted"  # on A's topics
    # B kept its connection and its subscriptions: its request after the intruder came is answered.
    kind, body = b.request("get")
    assert kind == "accepted" and body["queuedJobs"] == []
    assert not b.gone.is_set()


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_the_client_id_is_the_thing_even_when_another_id_is_asked(backend, connect):
    creds = backend.provision(unique("a"))
    first = connect(creds)
    # The same certificate with another client id is the same client: it replaces the first
    # connection, as a second connection with the same client id does on AWS IoT.
    second = connect(creds, client_id=unique("other"))
    assert first.gone.wait(10)
    assert second.request("get")[0] == "accepted"
    assert not second.gone.is_set()


SERVICE_TOPICS = ["jobs/notify", "jobs/notify-next", "jobs/get/accepted", "jobs/get/rejected",
                  "jobs/start-next/accepted", "jobs/start-next/rejected", "jobs/job-1/get/accepted",
                  "jobs/$next/get/rejected", "jobs/job-1/update/accepted", "jobs/job-1/update/rejected",
                  "streams/s-1/data/json", "streams/s-1/description/cbor", "streams/s-1/rejected/json"]


@pytest.mark.row("cross-thing attempts and bad URLs")
@pytest.mark.parametrize("suffix", SERVICE_TOPICS)
def test_a_device_cannot_publish_what_only_the_service_publishes(backend, connect, suffix: str):
    d = connect(backend.provision(unique("forger")))
    assert d.subscribe(f"$aws/things/{d.name}/streams/#") == [1]
    forged = {"forged": uuid.uuid4().hex}
    d.publish(f"$aws/things/{d.name}/{suffix}", json.dumps(forged))
    # The device is subscribed to every topic of its own: what it publishes comes back to it
    # before the answer to a later request (one connection, in order). Its request came back;
    # the forged message did not.
    assert d.request("get")[0] == "accepted"
    received = [b for _, b in d.messages]
    assert received and "clientToken" in received[0] and forged not in received
    assert not d.gone.is_set()


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_a_thing_cannot_publish_or_subscribe_on_another_things_topics(backend, connect):
    a = connect(backend.provision(unique("a")))
    b = connect(backend.provision(unique("b")))
    assert a.subscribe(f"$aws/things/{b.name}/jobs/notify-next") == [128]
    assert a.subscribe(f"$aws/things/{b.name}/streams/#") == [128]
    forged = {"forged": uuid.uuid4().hex}
    a.publish(f"$aws/things/{b.name}/jobs/notify-next", json.dumps(forged))
    a.publish(f"$aws/things/{b.name}/jobs/get", json.dumps({"clientToken": "from-a"}))
    # The broker had passed on (or dropped) A's publishes when it acknowledged them: had they gone
    # through, B (subscribed to its jobs/#) would have got them, and the service's answer to the
    # request made in B's name, before the answer to B's own request.
    assert b.request("get")[0] == "accepted"
    received = [body for _, body in b.messages]
    assert forged not in received
    assert not [m for m in received if isinstance(m, dict) and m.get("clientToken") == "from-a"]


@pytest.mark.row("cross-thing attempts and bad URLs")
def test_a_retained_publish_closes_the_connection_and_is_not_kept(backend, connect):
    creds = backend.provision(unique("retainer"))
    d = connect(creds)
    topic = f"$aws/things/{d.name}/jobs/notify-next"
    d.client.publish(topic, json.dumps({"timestamp": 1, "forged": True}), qos=1, retain=True)
    assert d.gone.wait(10), "a retained publish was accepted"
    d.close()
    # A later subscriber gets the service's notify-next first: nothing retained came before it.
    later = connect(creds, subscribe="notify-next")
    job_id = unique("job")
    create(backend, job_id, later.name)
    assert later.event("notify-next")["execution"]["jobId"] == job_id
    assert later.messages == []


@pytest.mark.parametrize("topic", ["things/{thing}/telemetry", "$aws/things/{thing}/jobs/get"])
def test_retained_publishes_are_refused_everywhere(backend, connect, topic: str):
    d = connect(backend.provision(unique("retainer")), subscribe=None)
    d.client.publish(topic.format(thing=d.name), "{}", qos=1, retain=True)
    assert d.gone.wait(10), "a retained publish was accepted"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Any]:
    """A broker of its own, started with thing t1 already known (its access comes from the
    configuration written at start, not from the admin connection); yields connect(thing) ->
    a Watched device. The stand-in's broker may have reread its configuration (after a
    certificate was revoked), which makes mosquitto 2.0 forget max_qos."""
    ca = LocalCA(tmp_path / "ca").ensure()
    server = ca.issue_server(tmp_path / "server")
    admin = ca.issue_client(ADMIN_CN, tmp_path / "admin")
    b = Broker(tmp_path / "broker", ca.cert_path, server.cert_pem, server.key_pem, admin.cert_pem, admin.key_pem)
    port = b.start(["t1"])
    made: list[Device] = []

    def make(thing: str) -> Watched:
        files = ca.issue_client(thing, tmp_path / thing)
        creds = ThingCredentials(thing_name=thing, certificate_pem=files.cert_pem.read_bytes(),
                                 private_key_pem=files.key_pem.read_bytes(), certificate_id=thing,
                                 endpoint=Endpoint(host="localhost", port=port, ca_pem=ca.cert_path.read_bytes()))
        d = Watched(creds, tmp_path / f"dev-{thing}", subscribe=None)
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            d.close()
        b.stop()


def test_qos_2_is_granted_as_qos_1_and_a_qos_2_publish_closes_the_connection(own_broker):
    d = own_broker("t1")
    assert d.subscribe("$aws/things/t1/jobs/notify", qos=2) == [1]
    assert d.subscribe("$aws/things/t1/jobs/#", qos=2) == [1]
    assert d.subscribe("$aws/things/t1/jobs/get/accepted", qos=0) == [0]
    d.client.publish("$aws/things/t1/jobs/get", "{}", qos=2)
    assert d.gone.wait(10), "a QoS 2 publish was accepted"


def test_things_known_at_start_cannot_publish_what_only_the_service_publishes(own_broker):
    d = own_broker("t1")
    assert d.subscribe("$aws/things/t1/#") == [128]  # only jobs/ and streams/ are its own
    assert d.subscribe("$aws/things/t1/jobs/#") == [1]
    assert d.subscribe("$aws/things/t1/streams/#") == [1]
    for suffix in SERVICE_TOPICS:
        d.publish(f"$aws/things/t1/{suffix}", json.dumps({"forged": suffix}))
    d.publish("$aws/things/t1/jobs/get", '{"clientToken": "mine"}')
    d.take(lambda t, b: t == "$aws/things/t1/jobs/get")  # its own request came back to it ...
    assert d.messages == []  # ... and nothing forged before it
