"""tools/fotatools/cloud/ca.py: an IPv4 address among the server certificate's hosts goes into
its subjectAltName as an IPAddress entry, which is what a TLS client connecting by address
checks (a DNSName entry spelling the address does not match it)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading

import pytest
from cryptography import x509

from fotatools.cloud.ca import LocalCA


def test_addresses_are_ip_entries_and_names_are_dns_entries(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    server = ca.issue_server(tmp_path / "srv", hosts=["board.example", "10.1.2.3"])
    cert = x509.load_pem_x509_certificate(server.cert_pem.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                        ipaddress.ip_address("10.1.2.3")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "board.example"]


def handshake(tmp_path, server_hostname: str) -> None:
    """A TLS handshake over a socket pair: the stand-in's server certificate (hosts
    10.1.2.3) against a client that trusts its CA and checks `server_hostname`."""
    ca = LocalCA(tmp_path / "ca").ensure()
    server = ca.issue_server(tmp_path / "srv", hosts=["10.1.2.3"])
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(server.cert_pem, server.key_pem)
    cctx = ssl.create_default_context(cafile=str(ca.cert_path))
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)

    def serve() -> None:
        try:
            with sctx.wrap_socket(a, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate

    t = threading.Thread(target=serve)
    t.start()
    try:
        with cctx.wrap_socket(b, server_hostname=server_hostname):
            pass
    finally:
        b.close()
        t.join(5)
        a.close()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3"])
def test_a_client_connecting_by_a_named_address_accepts_the_certificate(tmp_path, address):
    handshake(tmp_path, address)


@pytest.mark.parametrize("address", ["10.1.2.4", "127.0.0.2"])
def test_a_client_connecting_by_another_address_refuses_it(tmp_path, address):
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        handshake(tmp_path, address)
