"""The device folder that `fota provision` writes: config and credentials in DER.

Layout of the folder (copied as is to the root of the board's filesystem):

    config.json          {"thing", "endpoint", "port", "cert", "key", "ca", "ntp"}
    certs/device.crt.der the thing's certificate
    certs/device.key.der its private key
    certs/ca.der         the CA that signs the broker's certificate
    certs/signer.der     (with --signer) the public key every firmware image must be signed with
                         (from a key or a code-signing certificate)

The device's mbedTLS takes DER only, so the PEM that the control plane hands out is converted
here. PEM copies (certificate, private key, CA) stay on the host in `<home>/things/<thing>/`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .backend import ThingCredentials

CONFIG = "config.json"
CERT = "certs/device.crt.der"
KEY = "certs/device.key.der"
CA = "certs/ca.der"
SIGNER = "certs/signer.der"
CONFIG_KEYS = ("thing", "endpoint", "port", "cert", "key", "ca")


def ntp_sources(value: Any) -> list[str]:
    """config.json's "ntp" as the device reads it (lib/fota/clock.py): one "host[:port]" or a
    list of them; "" or [] turns NTP off. ValueError with a one-line reason otherwise."""
    if isinstance(value, str):
        items = [value] if value else []
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise ValueError(f'"ntp" must be "host[:port]" or a list of them, not {value!r}')
    for item in items:
        host, _, port = item.partition(":")
        if not host or " " in item or (port and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ValueError(f'"ntp": bad time server {item!r} (give "host" or "host:port")')
    return items


def cert_der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def key_der(pem: bytes) -> bytes:
    """The key in DER, in its traditional form (PKCS#1 for RSA, SEC1 for EC): mbedTLS reads it."""
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(serialization.Encoding.DER,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def host_dir(home: Path, thing: str) -> Path:
    return home / "things" / thing


def _write_secret(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only: a new file is made 0600, and a file that
    was there (with whatever mode) is made 0600 before the key goes in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)


def signer_der(pem: bytes) -> bytes:
    """The P-256 public key of a PEM code-signing certificate (as AWS code signing hands out),
    public key or private key, as DER SubjectPublicKeyInfo (what the device's lib/ecdsa.py
    reads). ValueError with a one-line reason otherwise."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key: Any
    if b"-----BEGIN CERTIFICATE-----" in pem:
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError as e:
            raise ValueError(f"not a PEM certificate: {str(e).splitlines()[0]}") from None
    else:
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(pem, password=None).public_key()
            except (ValueError, TypeError) as e:
                raise ValueError(f"not a PEM key or certificate: {str(e).splitlines()[0]}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("the signer key must be an EC P-256 (prime256v1) key (of a key or "
                         "certificate)")
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_device_folder(creds: ThingCredentials, out: Path, home: Path,
                        signer: bytes | None = None) -> dict[str, Any]:
    """Write the device folder into `out` and the PEM copies under `home`; return the config.
    signer: a DER public key (signer_der) that the device will require images to be signed with."""
    ep = creds.endpoint
    config = {"thing": creds.thing_name, "endpoint": ep.host, "port": ep.port,
              "cert": CERT, "key": KEY, "ca": CA, "ntp": ep.ntp}
    (out / "certs").mkdir(parents=True, exist_ok=True)
    if signer:
        (out / SIGNER).write_bytes(signer)
        config["signer"] = SIGNER
    (out / CERT).write_bytes(cert_der(creds.certificate_pem))
    _write_secret(out / KEY, key_der(creds.private_key_pem))
    (out / CA).write_bytes(cert_der(ep.ca_pem))
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    keep = host_dir(home, creds.thing_name)
    keep.mkdir(parents=True, exist_ok=True)
    (keep / "device.crt.pem").write_bytes(creds.certificate_pem)
    _write_secret(keep / "device.key.pem", creds.private_key_pem)
    (keep / "ca.pem").write_bytes(ep.ca_pem)
    (keep / "thing.json").write_text(json.dumps(
        {**config, "certificate_id": creds.certificate_id, "device_folder": str(out)},
        indent=2) + "\n")
    return config


def check_device_folder(folder: Path) -> dict[str, Any]:
    """Read and check a device folder; raise ValueError with a one-line reason."""
    path = folder / CONFIG
    if not folder.is_dir():
        raise ValueError(f"device folder not found: {folder}")
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} not found (make the folder with `fota provision`)") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a JSON object")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    if "ntp" in config:
        try:
            ntp_sources(config["ntp"])
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    for k in ("cert", "key", "ca"):
        rel = str(config[k])
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise ValueError(f"{path}: {k} must be a path inside the folder, not {rel}")
        if not (folder / rel).is_file():
            raise ValueError(f"{path}: {k} file {rel} is missing")
    return config
