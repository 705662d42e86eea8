"""tools/fotatools/cloud/control.py: GetThingShadow and UpdateThingShadow take a shadowName of 1
to 64 characters of [a-zA-Z0-9:_-], as AWS IoT's API reference gives it; any other name is an
InvalidRequestException and no shadow is made. Without a shadowName they use the classic shadow."""

from __future__ import annotations

import pytest

from fotatools.cloud.control import ControlError

from tests.cloud.engines import control_api

STATE = {"state": {"reported": {"v": 1}}}


@pytest.fixture()
def api(tmp_path):
    yield from control_api(tmp_path)


@pytest.mark.parametrize("name", ["n" * 64, "n", "a:b_c-D9"], ids=["inside-64", "inside-1", "all-kinds"])
def test_a_named_shadow_within_the_pattern_is_kept(api, name):
    api.call("UpdateThingShadow", {"thingName": "a", "shadowName": name, "payload": STATE})
    got = api.call("GetThingShadow", {"thingName": "a", "shadowName": name})
    assert got["state"] == {"reported": {"v": 1}}
    with pytest.raises(ControlError) as e:  # the classic shadow is another one
        api.call("GetThingShadow", {"thingName": "a"})
    assert e.value.kind == "ResourceNotFoundException"


@pytest.mark.parametrize("name", ["n" * 65, "a.b", "a/b", "a b", "é"],
                         ids=["outside-65", "dot", "slash", "space", "non-ascii"])
def test_a_shadow_name_outside_the_pattern_is_refused_and_makes_nothing(api, name):
    for call, params in (("UpdateThingShadow", {"payload": STATE}), ("GetThingShadow", {})):
        with pytest.raises(ControlError) as e:
            api.call(call, {"thingName": "a", "shadowName": name, **params})
        assert (e.value.kind, e.value.message) == (
            "InvalidRequestException", "shadowName must be 1 to 64 characters of a-z A-Z 0-9 : _ -")
    assert api.shadows.get_thing_shadow("a", name) is None


def test_without_a_shadow_name_the_classic_shadow_is_used(api):
    api.call("UpdateThingShadow", {"thingName": "a", "payload": STATE})
    assert api.call("GetThingShadow", {"thingName": "a"})["state"] == {"reported": {"v": 1}}
