"""tools/fotatools/cloud/shadow.py, ShadowEngine.handle: a shadow request is answered only when
its thing name is 1-128 characters of [a-zA-Z0-9:_-] and, for a named shadow, the shadow name
is 1-64 of the same (AWS IoT's Device Shadow limits); a request on a topic with a bad thing
name or a bad shadow name gets no answer and stores nothing, whichever of the two is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fotatools.cloud.shadow import ShadowEngine

from tests.cloud.engines import shadow_engine

UPDATE = json.dumps({"state": {"reported": {"fw": "1.0.0"}}}).encode()


@pytest.fixture
def shadows(tmp_path: Path):
    yield from shadow_engine(tmp_path)


@pytest.mark.parametrize("thing, answered", [
    ("t" * 128, True), ("t" * 129, False), ("bad.thing", False), ("a:b_c-D9", True),
])
def test_the_classic_shadow_of_a_thing_name_out_of_bounds_is_not_touched(shadows, thing, answered):
    engine, sent = shadows
    engine.handle(f"$aws/things/{thing}/shadow/update", UPDATE)
    assert [t for t, _ in sent] == ([f"$aws/things/{thing}/shadow/update/accepted",
                                     f"$aws/things/{thing}/shadow/update/documents"] if answered else [])
    assert (engine.get_thing_shadow(thing) is not None) is answered


@pytest.mark.parametrize("name, answered", [
    ("n" * 64, True), ("n" * 65, False), ("bad.name", False), ("", False),
])
def test_a_named_shadow_whose_name_is_out_of_bounds_is_not_touched(shadows, name, answered):
    engine, sent = shadows
    engine.handle(f"$aws/things/t1/shadow/name/{name}/update", UPDATE)
    assert [t for t, _ in sent] == ([f"$aws/things/t1/shadow/name/{name}/update/accepted",
                                     f"$aws/things/t1/shadow/name/{name}/update/documents"] if answered else [])
    assert (engine.get_thing_shadow("t1", name) is not None) is answered
    assert engine.get_thing_shadow("t1") is None  # never the classic shadow instead
