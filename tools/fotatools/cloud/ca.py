"""The local certificate authority of the AWS IoT stand-in.

One CA (EC P-256) signs the server certificate shared by the MQTT broker and the object store
(SAN DNS:localhost and IP:127.0.0.1: the device's mbedTLS checks the host name) and the client
certificates of things (CN = thing name) and of the jobs service. Every certificate is written
as PEM (for host tools) and DER (for MicroPython, whose mbedTLS wants DER).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "FOTA local IoT CA"
VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, in memory, in PEM and DER."""

    cert_pem: bytes
    key_pem: bytes
    cert_der: bytes
    key_der: bytes

    @property
    def certificate_id(self) -> str:
        """SHA-256 of the DER certificate in hex, the form of an AWS IoT certificateId."""
        return hashlib.sha256(self.cert_der).hexdigest()


@dataclass(frozen=True)
class CertFiles:
    """Paths of one issued certificate and its key, in PEM and DER."""

    cert_pem: Path
    key_pem: Path
    cert_der: Path
    key_der: Path

    @property
    def certificate_id(self) -> str:
        """SHA-256 of the DER certificate in hex, the form of an AWS IoT certificateId."""
        return hashlib.sha256(self.cert_der.read_bytes()).hexdigest()


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LocalCA:
    """A CA kept in `folder` (ca.key.pem, ca.cert.pem, ca.cert.der)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.key_path = self.folder / "ca.key.pem"
        self.cert_path = self.folder / "ca.cert.pem"
        self.cert_der_path = self.folder / "ca.cert.der"

    # -- the CA itself -------------------------------------------------------------------
    def ensure(self) -> "LocalCA":
        """Create the CA key and self-signed certificate unless they exist."""
        if self.key_path.exists() and self.cert_path.exists():
            if not self.cert_der_path.exists():
                _write(self.cert_der_path, self._cert().public_bytes(serialization.Encoding.DER))
            return self
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fotatools")])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(self.key_path, key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), private=True)
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _write(self.cert_der_path, cert.public_bytes(serialization.Encoding.DER))
        return self

    def _key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def _cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def cert_der(self) -> bytes:
        return self.cert_der_path.read_bytes()

    # -- issuing ---------------------------------------------------------------------------
    def issue(self, cn: str, server: bool = False) -> Issued:
        """Issue a certificate for `cn` (a server one carries SAN localhost and 127.0.0.1)."""
        ca_key, ca_cert = self._key(), self._cert()
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS - 1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True,
                                         key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            ]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pkcs8 = serialization.PrivateFormat.PKCS8
        none = serialization.NoEncryption()
        return Issued(cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                      key_pem=key.private_bytes(serialization.Encoding.PEM, pkcs8, none),
                      cert_der=cert.public_bytes(serialization.Encoding.DER),
                      key_der=key.private_bytes(serialization.Encoding.DER, pkcs8, none))

    @staticmethod
    def save(issued: Issued, folder: Path, stem: str) -> CertFiles:
        """Write an issued certificate and key as folder/stem.{cert,key}.{pem,der}."""
        folder = Path(folder)
        files = CertFiles(cert_pem=folder / f"{stem}.cert.pem", key_pem=folder / f"{stem}.key.pem",
                          cert_der=folder / f"{stem}.cert.der", key_der=folder / f"{stem}.key.der")
        _write(files.key_pem, issued.key_pem, private=True)
        _write(files.key_der, issued.key_der, private=True)
        _write(files.cert_pem, issued.cert_pem)
        _write(files.cert_der, issued.cert_der)
        return files

    def issue_server(self, folder: Path, stem: str = "server") -> CertFiles:
        """Issue the TLS server certificate (CN and SAN localhost, SAN IP 127.0.0.1)."""
        return self.save(self.issue("localhost", server=True), folder, stem)

    def issue_client(self, cn: str, folder: Path, stem: str | None = None) -> CertFiles:
        """Issue a client certificate whose CN is `cn` (a thing name or a service name)."""
        if not cn or any(c in cn for c in "+#/\0"):
            raise ValueError(f"invalid certificate common name: {cn!r}")
        return self.save(self.issue(cn), folder, stem or cn)

    def existing(self, folder: Path, stem: str) -> CertFiles | None:
        """The files issued earlier under folder/stem, if all four are there."""
        folder = Path(folder)
        files = CertFiles(cert_pem=folder / f"{stem}.cert.pem", key_pem=folder / f"{stem}.key.pem",
                          cert_der=folder / f"{stem}.cert.der", key_der=folder / f"{stem}.key.der")
        if all(p.exists() for p in (files.cert_pem, files.key_pem, files.cert_der, files.key_der)):
            return files
        return None
