"""Certificate rotation on the stand-in: a certificate made INACTIVE is refused by the real
broker (its CA's revocation list, taken up by the running mosquitto), the thing's new one and
every other client go on working.

These tests run their own stand-in: taking up a new revocation list makes mosquitto 2.0.11
forget its listener's max_qos (see the cloud README), which other tests check."""

from __future__ import annotations

import socket
import sqlite3
import ssl
from pathlib import Path

import pytest

from fotatools.backend import BackendError
from fotatools.cloud import daemon
from fotatools.cloud.client import LocalBackend
from fotatools.cloud.db import Database
from tests.cloud.conftest import MINUTE, Device, mqtt_connect, unique


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("rotation-home")
    info = daemon.start(home, minute=MINUTE, owned=True)
    yield info, LocalBackend(home)
    daemon.stop(home)


@pytest.fixture
def cloud(own) -> daemon.CloudInfo:
    return own[0]


@pytest.fixture
def backend(own) -> LocalBackend:
    return own[1]


def handshake(cloud, folder: Path, cert: bytes, key: bytes) -> str:
    """A TLS 1.2 handshake with this client certificate (where the server's verdict on it is
    part of the handshake): "ok" or the alert."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.pem").write_bytes(cert)
    (folder / "k.pem").write_bytes(key)
    ctx = ssl.create_default_context(cafile=cloud.ca_pem)
    ctx.load_cert_chain(str(folder / "c.pem"), str(folder / "k.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with socket.create_connection(("127.0.0.1", cloud.mqtt_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost"):
                return "ok"
    except ssl.SSLError as e:
        return str(e.reason)


def status(backend, cert_id: str) -> str:
    return backend.call("DescribeCertificate", {"certificateId": cert_id})["certificateDescription"]["status"]


def test_rotation_refuses_the_old_certificate(backend, cloud, tmp_path: Path):
    thing = unique("rot")
    old = backend.provision(thing)
    assert mqtt_connect(cloud, tmp_path / "a", old.certificate_pem, old.private_key_pem) == "connected"
    new = backend.provision(thing)
    assert backend.retire_certificates(thing, keep=new.certificate_id) == [old.certificate_id]
    assert mqtt_connect(cloud, tmp_path / "b", old.certificate_pem, old.private_key_pem) != "connected"
    assert handshake(cloud, tmp_path / "b", old.certificate_pem, old.private_key_pem) \
        == "SSLV3_ALERT_CERTIFICATE_REVOKED"
    assert handshake(cloud, tmp_path / "c", new.certificate_pem, new.private_key_pem) == "ok"
    assert mqtt_connect(cloud, tmp_path / "c", new.certificate_pem, new.private_key_pem) == "connected"
    assert (status(backend, old.certificate_id), status(backend, new.certificate_id)) == ("INACTIVE", "ACTIVE")
    assert backend.call("ListThingPrincipals", {"thingName": thing})["principals"] == [
        backend.call("DescribeCertificate", {"certificateId": new.certificate_id})
        ["certificateDescription"]["certificateArn"]]
    # the thing keeps its topics with the new certificate
    d = Device(new, tmp_path / "dev")
    try:
        assert d.subscribe(f"$aws/things/{thing}/jobs/notify-next") == [1]
    finally:
        d.close()
    # nothing left to retire
    assert backend.retire_certificates(thing, keep=new.certificate_id) == []


def test_other_clients_go_on_after_a_rotation(backend, cloud, tmp_path: Path):
    # the broker reloads its configuration: connected things, things added at run time and the
    # jobs service keep working
    before = Device(backend.provision(unique("before")), tmp_path / "before")
    thing = unique("rot")
    backend.provision(thing)
    new = backend.provision(thing)
    backend.retire_certificates(thing, keep=new.certificate_id)
    after = Device(backend.provision(unique("after")), tmp_path / "after")
    try:
        for d in (before, after):
            assert d.subscribe(f"{d.base}/notify") == [1]
            backend.call("CreateJob", {"jobId": unique("job"), "targets": [backend.thing_arn(d.name)],
                                       "document": '{"operation": "fota"}'})
            assert d.event("notify-next")["execution"]["jobDocument"] == {"operation": "fota"}
    finally:
        before.close()
        after.close()


def test_reactivated_certificate_connects_again(backend, cloud, tmp_path: Path):
    thing = unique("rot")
    creds = backend.provision(thing)
    backend.call("UpdateCertificate", {"certificateId": creds.certificate_id, "newStatus": "INACTIVE"})
    assert mqtt_connect(cloud, tmp_path / "a", creds.certificate_pem, creds.private_key_pem) != "connected"
    backend.call("UpdateCertificate", {"certificateId": creds.certificate_id, "newStatus": "ACTIVE"})
    assert mqtt_connect(cloud, tmp_path / "b", creds.certificate_pem, creds.private_key_pem) == "connected"


@pytest.mark.parametrize("op, params, message", [
    ("UpdateCertificate", {"certificateId": "0" * 64, "newStatus": "INACTIVE"}, "ResourceNotFound"),
    ("UpdateCertificate", {"certificateId": "CERT", "newStatus": "GONE"}, "newStatus must be one of"),
    ("UpdateCertificate", {"certificateId": "CERT"}, "newStatus is required"),
    ("DescribeCertificate", {"certificateId": "0" * 64}, "ResourceNotFound"),
    ("DetachThingPrincipal", {"thingName": "THING", "principal": "arn:aws:cognito:x"}, "certificate ARN"),
    ("ListThingPrincipals", {"thingName": "nobody-here"}, "ResourceNotFound"),
])
def test_bad_certificate_requests(backend, op, params, message):
    thing = unique("bad")
    creds = backend.provision(thing)
    params = {k: {"CERT": creds.certificate_id, "THING": thing}.get(v, v) for k, v in params.items()}
    with pytest.raises(BackendError, match=message):
        backend.call(op, params)
    assert status(backend, creds.certificate_id) == "ACTIVE"


def test_database_of_an_older_version_gets_certificate_status(tmp_path: Path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE certificates (certificate_id TEXT PRIMARY KEY, thing_name TEXT NOT NULL, "
                 "certificate_pem TEXT NOT NULL, created_at REAL NOT NULL)")
    conn.execute("INSERT INTO certificates VALUES ('c1', 't1', 'PEM', 1.0)")
    conn.commit()
    conn.close()
    db = Database(path)
    try:
        assert db.get_certificate("c1")["status"] == "ACTIVE"
        db.add_certificate("c2", "t1", "PEM2", 2.0)
        assert db.set_certificate_status("c1", "INACTIVE")
        assert db.inactive_certificates() == ["PEM"]
        assert db.detach_certificate("c1", "t1")
        assert [c["certificate_id"] for c in db.certificates_of("t1")] == ["c2"]
    finally:
        db.close()


def test_revocation_is_kept_over_a_restart(tmp_path: Path):
    home = tmp_path / "home"
    daemon.start(home, minute=1.0, owned=True)
    try:
        backend = LocalBackend(home)
        old = backend.provision("kept")
        new = backend.provision("kept")
        assert backend.retire_certificates("kept", keep=new.certificate_id) == [old.certificate_id]
        daemon.stop(home)
        cloud = daemon.start(home, minute=1.0, owned=True)
        assert handshake(cloud, tmp_path / "a", old.certificate_pem, old.private_key_pem) \
            == "SSLV3_ALERT_CERTIFICATE_REVOKED"
        assert mqtt_connect(cloud, tmp_path / "b", new.certificate_pem, new.private_key_pem) == "connected"
    finally:
        daemon.stop(home)
