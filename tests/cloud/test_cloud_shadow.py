"""The stand-in's Device Shadow service over the real broker: a thing updates and reads its own
shadow on the MQTT topics AWS IoT reserves, gets accepted or rejected answers with its
clientToken, versions that grow, and nothing of another thing's shadow; the host reads the
shadow through the control API (GetThingShadow). The broker's access rules for shadow topics
are checked with both of its access-control modes (tests/cloud/test_cloud_acl.py's brokers)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from fotatools.backend import BackendError
from tests.cloud.test_cloud_acl import (DELIVERED, NO_SUBSCRIBERS, NOT_AUTHORIZED, broker,  # noqa: F401
                                        clients)
from fotatools.cloud.jobs import SERVICE_CN


class Shadow:
    """A device's shadow topics: subscribe to the answers, publish requests."""

    def __init__(self, device: Any) -> None:
        self.d = device
        self.base = f"$aws/things/{device.name}/shadow"
        for op in ("update", "get", "delete"):
            for answer in ("accepted", "rejected"):
                assert device.subscribe(f"{self.base}/{op}/{answer}") == [1]
        assert device.subscribe(f"{self.base}/update/delta") == [1]
        assert device.subscribe(f"{self.base}/update/documents") == [1]

    def request(self, op: str, body: Any = None, raw: bytes | None = None) -> tuple[str, dict[str, Any]]:
        token = uuid.uuid4().hex[:12]
        if raw is None:
            body = dict(body or {})
            body["clientToken"] = token
            raw = json.dumps(body).encode()
        self.d.publish(f"{self.base}/{op}", raw)
        topic, got = self.d.take(lambda t, b: t in (f"{self.base}/{op}/accepted", f"{self.base}/{op}/rejected")
                                 and (raw is None or not isinstance(b, dict) or b.get("clientToken") in (token, None)))
        return topic.rsplit("/", 1)[1], got


def test_a_thing_updates_and_reads_its_shadow(make_device, backend):
    d = make_device("shadow")
    s = Shadow(d)
    assert backend.thing_shadow(d.name) is None
    kind, body = s.request("get")
    assert kind == "rejected" and body["code"] == 404
    assert body["message"] == f"No shadow exists with name: '{d.name}'"

    kind, body = s.request("update", {"state": {"reported": {"firmware": "1.0.0", "app": "none"}}})
    assert kind == "accepted" and body["version"] == 1
    assert body["state"] == {"reported": {"firmware": "1.0.0", "app": "none"}}
    assert set(body["metadata"]["reported"]) == {"firmware", "app"}
    assert abs(body["timestamp"] - time.time()) < 60
    docs = d.take(lambda t, b: t == f"{s.base}/update/documents")[1]
    assert docs["previous"] is None and docs["current"]["version"] == 1

    kind, body = s.request("update", {"state": {"reported": {"firmware": "1.0.1"}}, "version": 1})
    assert kind == "accepted" and body["version"] == 2
    kind, body = s.request("update", {"state": {"reported": {"firmware": "0.9"}}, "version": 1})
    assert kind == "rejected" and (body["code"], body["message"]) == (409, "Version conflict")
    kind, body = s.request("update", raw=b"{not json")
    assert kind == "rejected" and (body["code"], body["message"]) == (400, "Invalid JSON")

    kind, body = s.request("get")
    assert kind == "accepted" and body["version"] == 2
    assert body["state"] == {"reported": {"firmware": "1.0.1", "app": "none"}}
    got = backend.thing_shadow(d.name)  # the host's read: the same document
    assert got["state"] == body["state"] and got["version"] == 2 and got["metadata"] == body["metadata"]


def test_the_host_sets_desired_state_and_the_thing_gets_the_delta(make_device, backend):
    d = make_device("delta")
    s = Shadow(d)
    s.request("update", {"state": {"reported": {"mode": "eco"}}})
    r = backend.call("UpdateThingShadow", {"thingName": d.name, "payload": {"state": {"desired": {"mode": "boost"}}}})
    assert r["version"] == 2 and r["state"] == {"desired": {"mode": "boost"}}
    accepted = d.take(lambda t, b: t == f"{s.base}/update/accepted" and b.get("version") == 2)[1]
    assert accepted["state"] == {"desired": {"mode": "boost"}}
    delta = d.take(lambda t, b: t == f"{s.base}/update/delta")[1]
    assert delta["state"] == {"mode": "boost"} and delta["version"] == 2
    with pytest.raises(BackendError) as e:
        backend.call("UpdateThingShadow", {"thingName": d.name, "payload": {"state": {"desired": {"mode": 1}},
                                                                            "version": 1}})
    assert e.value.code == "ConflictException"
    with pytest.raises(BackendError) as e:
        backend.call("GetThingShadow", {"thingName": "no-such-thing"})
    assert e.value.code == "ResourceNotFoundException"


def test_a_thing_cannot_touch_another_things_shadow(make_device, backend):
    a, b = make_device("sa"), make_device("sb")
    Shadow(b).request("update", {"state": {"reported": {"firmware": "1.0.0"}}})
    # a may not subscribe to b's answers, nor change b's shadow, nor forge b's answers
    assert a.subscribe(f"$aws/things/{b.name}/shadow/update/accepted") == [128]
    a.publish(f"$aws/things/{b.name}/shadow/update", json.dumps({"state": {"reported": {"firmware": "6.6.6"}}}))
    a.publish(f"$aws/things/{a.name}/shadow/update/accepted", json.dumps({"state": {}}))
    sa = Shadow(a)
    assert sa.request("update", {"state": {"reported": {"n": 1}}})[0] == "accepted"  # a's own: after the others
    doc = backend.thing_shadow(b.name)
    assert doc["state"]["reported"] == {"firmware": "1.0.0"} and doc["version"] == 1
    assert backend.thing_shadow(a.name)["version"] == 1


# --- the broker's rules for shadow topics, in both access-control modes ------------------------

def test_a_thing_may_use_its_own_shadow_topics_only(clients, request):
    t1, t2, service = clients["t1"], clients["t2"], clients[SERVICE_CN]
    assert service.subscribe("$aws/things/+/shadow/#") == [1]
    own = "$aws/things/t1/shadow"
    for op in ("update", "get", "delete", "name/cfg/update"):
        assert t1.publish(f"{own}/{op}", '{"state": {}}') == DELIVERED, op
    if request.node.callspec.params["broker"] == "dynamic-security":
        # (an ACL file cannot deny publishing where it allows receiving: broker.py)
        for forged in ("update/accepted", "update/rejected", "get/accepted", "delete/rejected",
                       "update/delta", "update/documents", "name/cfg/update/accepted",
                       "name/cfg/update/delta"):
            assert t1.publish(f"{own}/{forged}") == NOT_AUTHORIZED, forged
    for theirs in ("update", "get", "update/accepted"):
        assert t1.publish(f"$aws/things/t2/shadow/{theirs}") == NOT_AUTHORIZED, theirs
    # the service answers each thing on its own topics
    assert t2.subscribe("$aws/things/t2/shadow/update/accepted") == [1]
    assert service.publish("$aws/things/t2/shadow/update/accepted", '{"version": 1}') == DELIVERED
    assert t2.until("$aws/things/t2/shadow/update/accepted", '{"version": 1}') == []
