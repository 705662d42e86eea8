from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fotatools.cloud.ca import LocalCA
from tests.device.servers import FirmwareServer


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for localhost, and a second CA the device does not trust."""
    d = tmp_path_factory.mktemp("pki")
    ca = LocalCA(d / "ca").ensure()
    srv = ca.issue_server(d / "srv")
    rogue = LocalCA(d / "rogue").ensure()
    bad = rogue.issue_server(d / "bad")
    # right CA, server usage, another name: only the host-name check refuses it
    other = LocalCA.save(ca.issue("other.example", server=True, names=["other.example", "127.0.0.1"]), d / "other", "server")
    return {"ca_der": ca.cert_der_path, "cert": srv.cert_pem, "key": srv.key_pem,
            "rogue_cert": bad.cert_pem, "rogue_key": bad.key_pem, "ca": ca,
            "other_cert": other.cert_pem, "other_key": other.key_pem}


@pytest.fixture(scope="session")
def blob() -> bytes:
    """200 KB of deterministic bytes."""
    out = bytearray()
    h = b"seed"
    while len(out) < 200_000:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:200_000])


@pytest.fixture()
def https_server(pki: dict[str, Path], blob: bytes):
    with FirmwareServer({"blob.bin": blob}, pki["cert"], pki["key"]) as s:
        yield s


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory):
    """The local AWS IoT stand-in, running for the whole session."""
    from fotatools.cloud import daemon
    from fotatools.cloud.client import LocalBackend

    home = tmp_path_factory.mktemp("fota-home")
    daemon.start(home, owned=True)  # a killed test run leaves no cloud behind
    try:
        yield LocalBackend(home), home
    finally:
        daemon.stop(home)


@pytest.fixture()
def rig(cloud, tmp_path: Path):
    from tests.device.rig import Rig

    backend, home = cloud
    return lambda **kw: Rig(backend, home, tmp_path, **kw)
