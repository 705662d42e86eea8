"""The stand-in's CA (tools/fotatools/cloud/ca.py), in process: host names on both sides of
each rule, what the CA and its certificates and CRL carry, and the files it writes."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from fotatools.cloud import ca as camod
from fotatools.cloud.ca import LocalCA, check_host

LABEL = "a" * 63


@pytest.mark.parametrize("name, out", [
    ("example.com", "example.com"), ("Example.COM.", "example.com"), (" host ", "host"),
    ("10.0.0.2", "10.0.0.2"), ("127.0.0.1", "127.0.0.1"), ("255.255.255.254", "255.255.255.254"),
    (LABEL + ".x", LABEL + ".x"), (".".join([LABEL] * 3) + "." + "a" * 61, ".".join([LABEL] * 3) + "." + "a" * 61),
    ("a-b.c", "a-b.c"), ("x1", "x1"),
])
def test_good_host_names(name, out):
    assert check_host(name) == out


@pytest.mark.parametrize("name, why", [
    ("", "give a DNS name"), ("   ", "give a DNS name"), (5, "give a DNS name"), (None, "give a DNS name"),
    ("0.0.0.0", "not an address a device can connect to"), ("224.0.0.1", "not an address"),
    ("239.255.255.255", "not an address"), ("255.255.255.255", "not an address"),
    ("::1", "IPv4 only"), ("a" * 64 + ".x", "not a DNS name"),
    (".".join([LABEL] * 3) + "." + "a" * 62, "not a DNS name"),  # 254 characters
    ("-a.b", "not a DNS name"), ("a-.b", "not a DNS name"), ("a_b", "not a DNS name"),
    ("a..b", "not a DNS name"), ("1.2.3", "not a DNS name"), ("host.123", "not a DNS name"),
])
def test_bad_host_names(name, why):
    with pytest.raises(ValueError, match=why):
        check_host(name)


def test_the_ca_its_files_and_what_it_issues(tmp_path):
    before = dt.datetime.now(dt.timezone.utc)
    ca = LocalCA(tmp_path / "ca").ensure()
    cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    assert ca.cert_der_path.read_bytes() == cert.public_bytes(camod.serialization.Encoding.DER) == ca.cert_der
    assert stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.cert_path.stat().st_mode) == 0o644
    assert cert.not_valid_after_utc - before >= dt.timedelta(days=3650) - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc - before <= dt.timedelta(days=3650, minutes=5)
    assert before - cert.not_valid_before_utc >= dt.timedelta(minutes=59)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # made again from the key and certificate when only the DER copy is gone
    der = ca.cert_der_path.read_bytes()
    ca.cert_der_path.unlink()
    assert LocalCA(tmp_path / "ca").ensure().cert_der_path.read_bytes() == der
    assert LocalCA(tmp_path / "ca").ensure().cert_path.read_bytes() == ca.cert_path.read_bytes()

    server = ca.issue_server(tmp_path / "srv", hosts=["board.example", "10.1.2.3"])
    s = x509.load_pem_x509_certificate(server.cert_pem.read_bytes())
    assert server.cert_der.read_bytes() == s.public_bytes(camod.serialization.Encoding.DER)
    assert stat.S_IMODE(server.key_pem.stat().st_mode) == 0o600 == stat.S_IMODE(server.key_der.stat().st_mode)
    assert camod.cert_names(server.cert_pem) == {"localhost", "127.0.0.1", "board.example", "10.1.2.3"}
    assert camod.cert_names(server.cert_pem.read_bytes()) == camod.cert_names(server.cert_pem)
    eku = s.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert s.not_valid_after_utc - before <= dt.timedelta(days=3649, minutes=5)
    assert s.not_valid_after_utc - before >= dt.timedelta(days=3649) - dt.timedelta(minutes=5)
    assert ca.server_for(tmp_path / "srv", ["board.example", "10.1.2.3"]) == server  # the same names: kept
    client = ca.issue_client("thing-1", tmp_path / "c")
    c = x509.load_pem_x509_certificate(client.cert_pem.read_bytes())
    assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert client.cert_pem.name == "thing-1.cert.pem"
    for bad in ("", "a+b", "a#", "a/b", "a\0"):
        with pytest.raises(ValueError, match="invalid certificate common name"):
            ca.issue_client(bad, tmp_path / "c")

    crl_path = ca.write_crl(tmp_path / "crl.pem", [c.serial_number, s.serial_number, c.serial_number])
    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    assert sorted(r.serial_number for r in crl) == sorted({c.serial_number, s.serial_number})
    assert crl.is_signature_valid(cert.public_key())
    after = dt.datetime.now(dt.timezone.utc)
    for r in crl:  # revoked a minute before the list was made
        assert before - dt.timedelta(seconds=61) <= r.revocation_date_utc <= after - dt.timedelta(seconds=59)
    assert before - dt.timedelta(minutes=61) <= crl.last_update_utc <= after - dt.timedelta(minutes=59)
    assert crl.next_update_utc - before >= dt.timedelta(days=3650) - dt.timedelta(minutes=5)
    assert crl.next_update_utc - before <= dt.timedelta(days=3650, minutes=5)


def _usage(cert: x509.Certificate) -> tuple:
    ext = cert.extensions.get_extension_for_class(x509.KeyUsage)
    u = ext.value
    flags = (u.digital_signature, u.content_commitment, u.key_encipherment, u.data_encipherment,
             u.key_agreement, u.key_cert_sign, u.crl_sign)
    return (ext.critical, flags, (u.encipher_only, u.decipher_only) if u.key_agreement else None)


def test_key_usages_and_constraints(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    assert _usage(cert) == (True, (True, False, False, False, False, True, True), None)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert not cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).critical
    for files in (ca.issue_server(tmp_path / "s"), ca.issue_client("thing", tmp_path / "c")):
        c = x509.load_pem_x509_certificate(files.cert_pem.read_bytes())
        assert _usage(c) == (True, (True, False, False, False, True, False, False), (False, False))
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and not bc.value.ca
        assert c.issuer == cert.subject
        aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert aki.value.key_identifier == cert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest


def test_cert_names_of_a_certificate_without_subject_alt_name_is_an_empty_set(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    with pytest.raises(x509.ExtensionNotFound):  # the CA's own certificate names no host
        x509.load_pem_x509_certificate(ca.cert_path.read_bytes()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName)
    assert camod.cert_names(ca.cert_path) == set()
    assert camod.cert_names(ca.cert_path.read_bytes()) == set()
