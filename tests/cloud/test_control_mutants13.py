"""tools/fotatools/cloud/control.py: the uptime and job counts Status gives, AddThingToThingGroup
and RemoveThingFromThingGroup through the control API, and the shadow of a thing that does not
exist."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fotatools.cloud import control
from fotatools.cloud.control import ControlError
from fotatools.cloud.jobs import thing_arn

from tests.cloud.engines import control_api


@pytest.fixture()
def api(tmp_path):
    yield from control_api(tmp_path)


def test_status_gives_the_uptime_to_a_tenth_of_a_second(api, monkeypatch):
    # `fota cloud status` shows it: 12.34 s after the start is 12.3, not 12 (nor 12.34)
    api.started = 1000.0
    monkeypatch.setattr(control, "time", SimpleNamespace(time=lambda: 1012.34))
    assert api.call("Status", {})["uptimeSeconds"] == 12.3


def test_status_counts_the_jobs_by_status(api):
    for job_id in ("j1", "j2", "j3"):
        api.call("CreateJob", {"jobId": job_id, "targets": [thing_arn("a")], "document": {}})
    api.call("CancelJob", {"jobId": "j3"})
    assert api.call("Status", {})["jobs"] == {"IN_PROGRESS": 2, "CANCELED": 1}


def test_a_thing_is_added_to_and_removed_from_the_named_group(api):
    api.call("CreateThingGroup", {"thingGroupName": "g"})
    assert api.call("AddThingToThingGroup", {"thingGroupName": "g", "thingName": "a"}) == {}
    assert api.call("ListThingsInThingGroup", {"thingGroupName": "g"})["things"] == ["a"]
    assert api.call("DescribeThing", {"thingName": "a"})["thingGroups"] == ["g"]
    with pytest.raises(ControlError) as e:
        api.call("AddThingToThingGroup", {"thingGroupName": "g"})
    assert (e.value.kind, e.value.message) == ("InvalidRequestException", "thingName is required (a string)")
    assert api.call("RemoveThingFromThingGroup", {"thingGroupName": "g", "thingName": "a"}) == {}
    assert api.call("ListThingsInThingGroup", {"thingGroupName": "g"})["things"] == []


def test_no_shadow_is_made_or_read_for_a_thing_that_does_not_exist(api):
    # AWS IoT answers 404 "Thing not found" (Device Shadow error messages, developer guide):
    # a mistyped thing name gets no shadow of its own
    for op, params in (("UpdateThingShadow", {"payload": {"state": {"desired": {"x": 1}}}}),
                       ("GetThingShadow", {}), ("GetThingShadow", {"shadowName": "fota"})):
        with pytest.raises(ControlError) as e:
            api.call(op, {"thingName": "ghost", **params})
        assert (e.value.kind, e.value.message) == ("ResourceNotFoundException", "Thing ghost does not exist")
    assert api.shadows.get_thing_shadow("ghost", "") is None
    api.call("UpdateThingShadow", {"thingName": "a", "payload": {"state": {"desired": {"x": 1}}}})
    assert api.call("GetThingShadow", {"thingName": "a"})["state"]["desired"] == {"x": 1}
