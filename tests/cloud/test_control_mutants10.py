"""tools/fotatools/cloud/control.py: DetachThingPrincipal of a thing that does not exist is a
ResourceNotFoundException (as AWS IoT's API reference lists for it), even with the ARN of a real
certificate, and the certificate stays attached to its own thing."""

from __future__ import annotations

import pytest

from fotatools.cloud.control import ControlApi, ControlError, cert_arn
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore

CERT = "c" * 64


@pytest.fixture()
def api(tmp_path):
    db = Database(tmp_path / "cloud.db")
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    engine = JobsEngine(db, presign=store.presign, minute=60.0)
    engine.create_thing("a")
    engine.add_certificate(CERT, "a", "pem")
    yield ControlApi(engine, store, None, "localhost", 8883)  # type: ignore[arg-type]
    db.close()


def test_detaching_from_a_thing_that_does_not_exist_is_refused(api):
    with pytest.raises(ControlError) as e:
        api.call("DetachThingPrincipal", {"thingName": "ghost", "principal": cert_arn(CERT)})
    assert e.value.kind == "ResourceNotFoundException"
    assert e.value.message == "Thing ghost does not exist"
    assert api.call("ListThingPrincipals", {"thingName": "a"})["principals"] == [cert_arn(CERT)]


def test_detaching_from_its_own_thing_is_taken(api):
    assert api.call("DetachThingPrincipal", {"thingName": "a", "principal": cert_arn(CERT)}) == {}
    assert api.call("ListThingPrincipals", {"thingName": "a"})["principals"] == []
