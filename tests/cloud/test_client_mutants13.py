"""The local backend (tools/fotatools/cloud/client.py) against a control API that lacks an
operation: a stand-in started by an older fota is named as such, with what to do about it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools.backend import BackendError
from fotatools.cloud.client import LocalBackend

from tests.cloud.engines import local_backend


@pytest.fixture()
def backend(tmp_path: Path):
    def older(api):  # as a stand-in from before that operation has it
        del api.ops["ListJobTargets"]

    for b, _ in local_backend(tmp_path, change=older):
        yield b


def test_an_operation_the_running_stand_in_lacks_says_to_restart_it(backend: LocalBackend):
    with pytest.raises(BackendError) as e:
        backend.call("ListJobTargets", {"jobId": "j"})
    assert str(e.value) == (f"the local cloud running on {backend.home} is older than this fota (it "
                            "has no ListJobTargets): restart it with `fota cloud stop` and "
                            "`fota cloud start`")
    assert e.value.code == "UnknownOperationException"
    # any other refusal is the operation's own message
    with pytest.raises(BackendError) as e:
        backend.call("DescribeThing", {"thingName": "ghost"})
    assert str(e.value) == "DescribeThing failed: ResourceNotFoundException: Thing ghost does not exist"
