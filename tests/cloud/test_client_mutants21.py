"""The local backend (tools/fotatools/cloud/client.py) says which job, thing or group a user
named does not exist: NotFound carries the kind and the name, and its one-line message says both
and where (the local cloud)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.backend import NotFound

from tests.cloud.engines import local_backend


@pytest.fixture()
def setup(tmp_path: Path):
    yield from local_backend(tmp_path)


@pytest.mark.parametrize("kind, ask", [
    ("thing", lambda b: b.thing_arn("ghost")),
    ("group", lambda b: b.group_arn("ghost")),
    ("job", lambda b: b.describe_job("ghost")),
])
def test_a_name_that_does_not_exist_is_not_found_on_the_local_cloud(setup, kind, ask):
    backend, _ = setup
    with pytest.raises(NotFound) as e:
        ask(backend)
    assert (e.value.kind, e.value.name, e.value.code) == (kind, "ghost", "ResourceNotFoundException")
    assert str(e.value) == f"no {kind} 'ghost' on the local cloud"
