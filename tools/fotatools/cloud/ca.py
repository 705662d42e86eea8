"""The local certificate authority of the AWS IoT stand-in.

One CA (EC P-256) signs the server certificate shared by the MQTT broker and the object store
(SAN DNS:localhost and IP:127.0.0.1, plus the names given with `--host`: the device's mbedTLS
checks the host name) and the client
certificates of things (CN = thing name) and of the jobs service. Every certificate is written
as PEM (for host tools) and DER (for MicroPython, whose mbedTLS wants DER). A certificate made
INACTIVE goes into the CA's revocation list (`write_crl`), which the broker checks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "FOTA local IoT CA"
VALIDITY_DAYS = 3650
DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_host(name: str) -> str:
    """A host name devices use to reach this machine, checked and normalised: an IPv4 literal
    (as `ipaddress` writes it) or a DNS name (lower case, no trailing dot). ValueError otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("bad host name '': give a DNS name or an IPv4 address")
    text = name.strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.version != 4:
            raise ValueError(f"bad host {name!r}: the stand-in listens on IPv4 only; "
                             "give an IPv4 address or a DNS name")
        if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
            raise ValueError(f"bad host {name!r}: not an address a device can connect to")
        return str(ip)
    dns = text.lower()
    if dns.endswith("."):
        dns = dns[:-1]
    labels = dns.split(".")
    if (len(dns) > 253 or not all(_LABEL_RE.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise ValueError(f"bad host {name!r}: not a DNS name (labels of a-z 0-9 -, at most 63 "
                         "characters each) nor an IPv4 address")
    return dns


def server_names(hosts: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The SAN entries of the server certificate: localhost, 127.0.0.1 and `hosts`, without
    repeats (each checked with `check_host`)."""
    out: list[str] = []
    for h in list(DEFAULT_SERVER_NAMES) + [check_host(h) for h in hosts]:
        if h not in out:
            out.append(h)
    return out


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]


def cert_names(cert_pem: Path | bytes) -> set[str]:
    """The DNS names and IP addresses in a certificate's SAN (strings)."""
    data = cert_pem if isinstance(cert_pem, bytes) else Path(cert_pem).read_bytes()
    cert = x509.load_pem_x509_certificate(data)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({str(n) for n in san.get_values_for_type(x509.DNSName)}
            | {str(a) for a in san.get_values_for_type(x509.IPAddress)})


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


def serial_number(cert_pem: bytes | str) -> int:
    """The serial number of a PEM certificate (what a CRL lists)."""
    data = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    return x509.load_pem_x509_certificate(data).serial_number


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
    def issue(self, cn: str, server: bool = False, names: list[str] | None = None,
              valid: tuple[dt.datetime, dt.datetime] | None = None) -> Issued:
        """Issue a certificate for `cn` (a server one carries SAN localhost and 127.0.0.1, or
        `names`: DNS names and IP addresses), valid (not before, not after): by default from an
        hour ago for ten years. Publicly trusted server certificates live 47 to 200 days: tests
        of the board's clock give such dates."""
        ca_key, ca_cert = self._key(), self._cert()
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        start, end = valid or (now - dt.timedelta(hours=1), now + dt.timedelta(days=VALIDITY_DAYS - 1))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
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
            builder = builder.add_extension(x509.SubjectAlternativeName(
                _san_entries(list(names or DEFAULT_SERVER_NAMES))), critical=False)
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

    def issue_server(self, folder: Path, stem: str = "server", hosts: list[str] | tuple[str, ...] = (),
                     valid: tuple[dt.datetime, dt.datetime] | None = None) -> CertFiles:
        """Issue the TLS server certificate: CN localhost, SAN localhost, 127.0.0.1 and
        `hosts` (DNS names or IPv4 addresses by which devices reach this machine); `valid` as
        for issue()."""
        return self.save(self.issue("localhost", server=True, names=server_names(hosts), valid=valid),
                         folder, stem)

    def server_for(self, folder: Path, hosts: list[str] | tuple[str, ...] = (),
                   stem: str = "server") -> CertFiles:
        """The server certificate in folder/stem if it names exactly localhost, 127.0.0.1 and
        `hosts`; a new one (same CA) otherwise."""
        files = self.existing(folder, stem)
        if files is not None:
            try:
                if cert_names(files.cert_pem) == set(server_names(hosts)):
                    return files
            except ValueError:
                pass  # unreadable: issue it again
        return self.issue_server(folder, stem, hosts)

    def issue_client(self, cn: str, folder: Path, stem: str | None = None) -> CertFiles:
        """Issue a client certificate whose CN is `cn` (a thing name or a service name)."""
        if not cn or any(c in cn for c in "+#/\0"):
            raise ValueError(f"invalid certificate common name: {cn!r}")
        return self.save(self.issue(cn), folder, stem or cn)

    # -- revoking --------------------------------------------------------------------------
    def write_crl(self, path: Path, serials: list[int] | tuple[int, ...] = ()) -> Path:
        """Write (PEM) the CA's certificate revocation list: these serial numbers are revoked.
        It is valid as long as the CA; the broker refuses a client certificate listed in it."""
        ca_key, ca_cert = self._key(), self._cert()
        now = _now()
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(ca_cert.subject)
                   .last_update(now - dt.timedelta(hours=1))
                   .next_update(now + dt.timedelta(days=VALIDITY_DAYS)))
        for serial in sorted(set(serials)):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(now - dt.timedelta(minutes=1)).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        _write(Path(path), crl.public_bytes(serialization.Encoding.PEM))
        return Path(path)

    def existing(self, folder: Path, stem: str) -> CertFiles | None:
        """The files issued earlier under folder/stem, if all four are there."""
        folder = Path(folder)
        files = CertFiles(cert_pem=folder / f"{stem}.cert.pem", key_pem=folder / f"{stem}.key.pem",
                          cert_der=folder / f"{stem}.cert.der", key_der=folder / f"{stem}.key.der")
        if all(p.exists() for p in (files.cert_pem, files.key_pem, files.cert_der, files.key_der)):
            return files
        return None
