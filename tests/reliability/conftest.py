"""The device fixtures (stand-in, rig, PKI) for the reliability sweeps."""

from tests.device.conftest import blob, cloud, https_server, pki, rig  # noqa: F401
