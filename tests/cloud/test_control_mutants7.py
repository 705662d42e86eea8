"""tools/fotatools/cloud/control.py: CreateThingGroup's `things` (a local extension: the things
to put in the new group) must be a list of thing names; anything else is an
InvalidRequestException and neither the group nor any membership is made."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError

from tests.cloud.engines import control_api


@pytest.fixture
def api(tmp_path):
    yield from control_api(tmp_path, ("dev-1",))


@pytest.mark.parametrize("things", [{"dev-1": True}, "dev-1", 5])
def test_things_that_are_not_a_list_are_refused(api, things):
    with pytest.raises(ControlError) as e:
        api.create_thing_group({"thingGroupName": "g", "things": things})
    assert e.value.kind == "InvalidRequestException"
    assert e.value.message == "things must be a list of thing names"
    with pytest.raises(ControlError) as e:
        api.engine.describe_thing_group("g")
    assert e.value.kind == "ResourceNotFoundException"


def test_a_list_of_things_is_taken(api):
    api.create_thing_group({"thingGroupName": "g", "things": ["dev-1"]})
    assert api.engine.list_things_in_group("g") == {"things": ["dev-1"]}
