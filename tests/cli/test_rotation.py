"""`fota provision THING --force` rotates the thing's certificate: on AWS (moto) the old one is
INACTIVE and detached from the thing and the device policy, on the stand-in the broker refuses
it; private key files end up 0600."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat

import boto3
import pytest

from tests.cli.conftest import REGION, ROLE_ARN, Fota, base_env, unique
from fotatools.aws import DEVICE_POLICY, AwsBackend
from fotatools.provisioning import KEY, host_dir, write_device_folder


@pytest.fixture
def backend(moto, aws_env) -> AwsBackend:
    return AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN)


def cert_status(iot, cert_id: str) -> str:
    return iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"]


def test_retire_makes_the_old_certificate_inactive_and_detached(backend):
    iot = backend.iot
    thing = unique("dev")
    old = backend.provision(thing)
    new = backend.provision(thing)
    old_arn = iot.describe_certificate(certificateId=old.certificate_id)["certificateDescription"]["certificateArn"]
    new_arn = iot.describe_certificate(certificateId=new.certificate_id)["certificateDescription"]["certificateArn"]
    assert backend.retire_certificates(thing, keep=new.certificate_id) == [old.certificate_id]
    assert cert_status(iot, old.certificate_id) == "INACTIVE"
    assert cert_status(iot, new.certificate_id) == "ACTIVE"
    assert iot.list_thing_principals(thingName=thing)["principals"] == [new_arn]
    assert iot.list_attached_policies(target=old_arn)["policies"] == []
    assert [p["policyName"] for p in iot.list_attached_policies(target=new_arn)["policies"]] == [DEVICE_POLICY]
    assert backend.retire_certificates(thing, keep=new.certificate_id) == []


def test_a_certificate_another_thing_uses_stays_active(backend):
    # AWS lets one certificate serve several things: rotating one of them only detaches it
    iot = backend.iot
    thing, other = unique("dev"), unique("dev")
    shared = backend.provision(thing)
    arn = iot.describe_certificate(certificateId=shared.certificate_id)["certificateDescription"]["certificateArn"]
    iot.create_thing(thingName=other)
    iot.attach_thing_principal(thingName=other, principal=arn)
    new = backend.provision(thing)
    assert backend.retire_certificates(thing, keep=new.certificate_id) == []
    assert cert_status(iot, shared.certificate_id) == "ACTIVE"
    assert arn not in iot.list_thing_principals(thingName=thing)["principals"]
    assert iot.list_thing_principals(thingName=other)["principals"] == [arn]
    assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == [DEVICE_POLICY]


def test_existing_key_files_become_owner_only(backend, tmp_path):
    creds = backend.provision(unique("dev"))
    out, home = tmp_path / "device", tmp_path / "home"
    keys = [out / KEY, host_dir(home, creds.thing_name) / "device.key.pem"]
    for k in keys:
        k.parent.mkdir(parents=True, exist_ok=True)
        k.write_bytes(b"old key")
        os.chmod(k, 0o644)
    write_device_folder(creds, out, home)
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, k
        assert k.read_bytes() != b"old key"


def test_provision_force_rotates_the_certificate(fota_aws, moto, aws_env, tmp_path):
    thing = unique("dev")
    out = tmp_path / "board"
    r = fota_aws("provision", thing, "--out", out, "--json")
    assert r.code == 0, r.err
    first = json.loads(r.out)
    assert first["retired_certificates"] == []
    os.chmod(out / KEY, 0o644)
    r = fota_aws("provision", thing, "--out", out, "--force", "--json")
    assert r.code == 0, r.err
    second = json.loads(r.out)
    assert second["retired_certificates"] == [first["certificate_id"]]
    assert stat.S_IMODE((out / KEY).stat().st_mode) == 0o600
    iot = boto3.client("iot", endpoint_url=moto.url, region_name=REGION)
    assert cert_status(iot, first["certificate_id"]) == "INACTIVE"
    assert cert_status(iot, second["certificate_id"]) == "ACTIVE"
    assert [p.rsplit("/", 1)[1] for p in iot.list_thing_principals(thingName=thing)["principals"]] \
        == [second["certificate_id"]]
    r = fota_aws("provision", thing, "--out", out, "--force")
    assert r.code == 0, r.err
    assert f"old certificate {second['certificate_id'][:16]}... is INACTIVE and detached" in r.out


def test_provision_force_on_the_stand_in_locks_the_old_certificate_out(tmp_path):
    # the whole command on the local stand-in: the broker refuses the old certificate, takes the
    # new one, and the device folder holds the new one (key 0600)
    env = base_env(tmp_path)
    env["FOTA_BACKEND"] = "local"
    fota = Fota(env, tmp_path)
    r = fota("cloud", "start", "--json")
    assert r.code == 0, r.err
    cloud = json.loads(r.out)
    try:
        out = tmp_path / "board"
        assert fota("provision", "kitchen-1", "--out", out).code == 0
        kept = tmp_path / "home" / "things" / "kitchen-1"
        old_cert, old_key = (kept / "device.crt.pem").read_bytes(), (kept / "device.key.pem").read_bytes()
        os.chmod(out / KEY, 0o644)
        r = fota("provision", "kitchen-1", "--out", out, "--force", "--json")
        assert r.code == 0, r.err
        assert len(json.loads(r.out)["retired_certificates"]) == 1
        assert stat.S_IMODE((out / KEY).stat().st_mode) == 0o600

        def handshake(cert: bytes, key: bytes) -> str:
            (tmp_path / "c.pem").write_bytes(cert)
            (tmp_path / "k.pem").write_bytes(key)
            ctx = ssl.create_default_context(cafile=cloud["ca_pem"])
            ctx.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            try:
                with socket.create_connection(("127.0.0.1", cloud["mqtt_port"]), timeout=5) as s:
                    with ctx.wrap_socket(s, server_hostname="localhost"):
                        return "ok"
            except ssl.SSLError as e:
                return str(e.reason)

        assert handshake(old_cert, old_key) == "SSLV3_ALERT_CERTIFICATE_REVOKED"
        assert handshake((kept / "device.crt.pem").read_bytes(), (kept / "device.key.pem").read_bytes()) == "ok"
    finally:
        assert fota("cloud", "stop").code == 0
