"""`hosts`: the stand-in reachable from the network under given names (`fota cloud start --host`).

Only loopback addresses are used: Linux routes all of 127.0.0.0/8 to lo, so 127.0.0.2 stands
for the machine's LAN address, and a listener on 127.0.0.1 alone does not answer on 127.0.0.3
while one on 0.0.0.0 does.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion

from fotatools.backend import ThingCredentials
from fotatools.cloud import daemon
from fotatools.cloud.ca import cert_names, check_host, server_names
from fotatools.cloud.client import LocalBackend
from tests.cloud.conftest import unique


def san(cert_pem: str | Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(Path(cert_pem).read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ([f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
            + [f"IP:{a}" for a in ext.get_values_for_type(x509.IPAddress)])


def answers(host: str, port: int) -> bool:
    """True when something accepts a TCP connection at host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def jobs_get(creds: ThingCredentials, folder: Path, host: str) -> dict:
    """Connect as the thing to `host` (TLS, CA and host name verified) and ask for its jobs."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("cert.pem", creds.certificate_pem), ("key.pem", creds.private_key_pem),
                       ("ca.pem", creds.endpoint.ca_pem)):
        (folder / name).write_bytes(data)
    ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=creds.thing_name,
                         protocol=mqtt.MQTTv311)
    client.tls_set_context(ctx)
    base = f"$aws/things/{creds.thing_name}/jobs/get"
    got: dict = {}
    done, subscribed = threading.Event(), threading.Event()
    client.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()

    def on_message(c, u, msg) -> None:
        got["topic"], got["body"] = msg.topic, json.loads(msg.payload)
        done.set()

    client.on_message = on_message
    client.connect(host, creds.endpoint.port, keepalive=30)
    client.loop_start()
    try:
        client.subscribe(f"{base}/+", 1)
        assert subscribed.wait(10), "no SUBACK"
        client.publish(base, json.dumps({"clientToken": "lan"}), qos=1).wait_for_publish(5)
        assert done.wait(10), "no answer to get"
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_check_host():
    assert check_host("127.0.0.2") == "127.0.0.2"
    assert check_host(" Fota-Host.Example. ") == "fota-host.example"
    assert check_host("board-server") == "board-server"
    for bad in ("", "bad_name", "-x.example", "x-.example", "a..b", "1.2.3", "300.1.1.1",
                "::1", "0.0.0.0", "224.0.0.1", "a" * 64 + ".example", "host:8883", "h st"):
        with pytest.raises(ValueError, match="bad host"):
            check_host(bad)
    assert server_names(["127.0.0.2", "localhost", "X.example", "x.example"]) == \
        ["localhost", "127.0.0.1", "127.0.0.2", "x.example"]


def test_bad_hosts_are_refused_before_starting(tmp_path: Path):
    with pytest.raises(daemon.CloudError, match="bad host"):
        daemon.start(tmp_path, hosts=["no_underscores"])
    assert not (tmp_path / "cloud" / "state.json").exists()


def test_a_device_on_the_network(tmp_path: Path):
    home = tmp_path / "home"
    info = daemon.start(home, hosts=["127.0.0.2", "Fota-Host.Example"], owned=True)
    try:
        server_cert = home / "cloud" / "server" / "server.cert.pem"
        ca_before = Path(info.ca_pem).read_bytes()
        assert sorted(san(server_cert)) == sorted(["DNS:localhost", "DNS:fota-host.example",
                                                   "IP:127.0.0.1", "IP:127.0.0.2"])
        assert info.hosts == ["127.0.0.2", "fota-host.example"] and info.mqtt_host == "127.0.0.2"
        # the device-facing parts listen on every interface, the control API on loopback only
        assert info.bind == "0.0.0.0" and info.control_url.startswith("http://127.0.0.1:")
        assert answers("127.0.0.3", info.mqtt_port) and answers("127.0.0.3", info.store_port)
        assert not answers("127.0.0.3", info.control_port)

        backend = LocalBackend(home)
        assert backend.endpoint().host == "127.0.0.2"
        creds = backend.provision(unique("lan"))
        assert creds.endpoint.host == "127.0.0.2"
        got = jobs_get(creds, tmp_path / "dev", creds.endpoint.host)
        assert got["topic"].endswith("/get/accepted") and got["body"]["clientToken"] == "lan"
        assert got["body"]["queuedJobs"] == [] and got["body"]["inProgressJobs"] == []

        # a name the certificate does not carry fails the host-name check
        with pytest.raises(ssl.SSLCertVerificationError, match="(?i)hostname|IP address mismatch"):
            jobs_get(creds, tmp_path / "dev", "127.0.0.3")

        # presigned URLs carry the first name and download with host-name verification
        fw = tmp_path / "fw.bin"
        fw.write_bytes(bytes(range(256)) * 40)
        backend.upload(fw, "lan/fw.bin")
        url = backend.presign("lan/fw.bin", 120)
        assert url.startswith(f"https://127.0.0.2:{info.store_port}/")
        ctx = ssl.create_default_context(cafile=info.ca_pem)
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            assert resp.read() == fw.read_bytes()

        # the same names again: the running stand-in; other names: stop it first
        assert daemon.start(home, hosts=["127.0.0.2", "fota-host.example"]).pid == info.pid
        assert daemon.start(home).pid == info.pid
        with pytest.raises(daemon.CloudConflict, match="stop it first"):
            daemon.start(home, hosts=["127.0.0.2"])
        assert daemon.status(home)["hosts"] == ["127.0.0.2", "fota-host.example"]
    finally:
        daemon.stop(home)
    cert_before = server_cert.read_bytes()

    # a restart without hosts keeps them (and the certificate); the thing can still connect
    again = daemon.start(home, owned=True)
    try:
        assert again.hosts == ["127.0.0.2", "fota-host.example"] and again.mqtt_host == "127.0.0.2"
        assert server_cert.read_bytes() == cert_before
        assert again.mqtt_port == info.mqtt_port
        assert jobs_get(creds, tmp_path / "dev", "127.0.0.2")["topic"].endswith("/get/accepted")
    finally:
        daemon.stop(home)

    # hosts=[]: loopback only again; a new server certificate from the same CA
    local = daemon.start(home, hosts=[], owned=True)
    try:
        assert local.hosts == [] and local.mqtt_host == "localhost" and local.bind == "127.0.0.1"
        assert cert_names(server_cert) == {"localhost", "127.0.0.1"}
        assert Path(local.ca_pem).read_bytes() == ca_before
        assert not answers("127.0.0.3", local.mqtt_port) and not answers("127.0.0.3", local.store_port)
        assert LocalBackend(home).presign("lan/fw.bin").startswith("https://localhost:")
        ctx = ssl.create_default_context(cafile=local.ca_pem)
        with pytest.raises(ssl.SSLCertVerificationError):  # the certificate no longer names it
            with socket.create_connection(("127.0.0.1", local.mqtt_port), timeout=5) as s:
                ctx.wrap_socket(s, server_hostname="127.0.0.2").close()
    finally:
        daemon.stop(home)
    assert daemon.remembered_hosts(home) == []


def _loopback_name(name: str) -> bool:
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a).is_loopback for a in addrs)


def test_a_dns_name(tmp_path: Path):
    name = "localhost.localdomain"
    if not _loopback_name(name):
        pytest.skip(f"{name} does not resolve to a loopback address here")
    info = daemon.start(tmp_path, hosts=[name], owned=True)
    try:
        assert info.mqtt_host == name and f"DNS:{name}" in san(tmp_path / "cloud" / "server" / "server.cert.pem")
        backend = LocalBackend(tmp_path)
        creds = backend.provision(unique("dns"))
        assert jobs_get(creds, tmp_path / "dev", name)["topic"].endswith("/get/accepted")
    finally:
        daemon.stop(tmp_path)
