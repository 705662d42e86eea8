"""tools/fotatools/cloud/control.py: DetachThingPrincipal of a thing that does not exist is a
ResourceNotFoundException (as AWS IoT's API reference lists for it), even with the ARN of a real
certificate, and the certificate stays attached to its own thing."""

from __future__ import annotations

import pytest

from fotatools.cloud.control import ControlError, cert_arn

from tests.cloud.engines import control_api

CERT = "c" * 64


@pytest.fixture()
def api(tmp_path):
    for a in control_api(tmp_path):
        a.engine.add_certificate(CERT, "a", "pem")
        yield a


def test_detaching_from_a_thing_that_does_not_exist_is_refused(api):
    with pytest.raises(ControlError) as e:
        api.call("DetachThingPrincipal", {"thingName": "ghost", "principal": cert_arn(CERT)})
    assert e.value.kind == "ResourceNotFoundException"
    assert e.value.message == "Thing ghost does not exist"
    assert api.call("ListThingPrincipals", {"thingName": "a"})["principals"] == [cert_arn(CERT)]


def test_detaching_from_its_own_thing_is_taken(api):
    assert api.call("DetachThingPrincipal", {"thingName": "a", "principal": cert_arn(CERT)}) == {}
    assert api.call("ListThingPrincipals", {"thingName": "a"})["principals"] == []
