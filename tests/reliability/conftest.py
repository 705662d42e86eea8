"""The device fixtures (stand-in, rig, PKI) for the reliability sweeps."""

import pytest

from tests.device.conftest import blob, cloud, https_server, pki, rig  # noqa: F401
from tests.device.rig import Rig


@pytest.fixture
def boards(cloud, tmp_path):
    """A new provisioned board (flash, filesystem, thing) at each call; keywords go to Rig
    (chip=..., flash_mb=...)."""
    backend, home = cloud
    made = []

    def make(**kw) -> Rig:
        folder = tmp_path / f"board{len(made)}"
        folder.mkdir()
        made.append(Rig(backend, home, folder, **kw))
        return made[-1]
    return make
