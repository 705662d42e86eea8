"""Several files in one FreeRTOS OTA (`afr_ota`) job: `fota publish --file ID=PATH[:TARGET]`.

Each file has a file id (0..255, as AWS IoT streams and CreateOTAUpdate number them; 0 is the
ESP32's own app image, ids above 0 go to other targets: a secondary MCU, a data file) and the
path the device stores it under (`filepath`). Every file is signed: ECDSA P-256 over SHA-256 of
the file, base64 DER in `sig-sha256-ecdsa`, as AWS code signing for FreeRTOS does.

The document, as AWS's OTA Update Manager writes it (no versions: those are in the files):

    {"afr_ota": {"protocols": ["MQTT"], "streamname": STREAM, "files": [
      {"fileid": 0, "filepath": ..., "filesize": n, "certfile": ..., "sig-sha256-ecdsa": ...,
       "fileType": 0}, ...]}}

With HTTP, `protocols` is ["HTTP"], there is no stream, and each file also has
`update_data_url` (a pre-signed URL placeholder) and `auth_scheme`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .release import KINDS, ImageError, load_release, read_file, sign_image

MAX_FILES = 50  # files in one AWS IoT stream
MAX_FILE_ID = 255  # FileId in the AWS IoT API model
MAX_FILEPATH = 255
DEFAULT_CERTFILE = "certs/signer.der"  # where `fota provision --signer` puts the key
SPEC_RE = re.compile(r"^(\d+)=([^:]+)(?::(.*))?$")


@dataclass
class OtaFile:
    """One file of an OTA update."""

    file_id: int
    path: Path  # on this machine
    filepath: str  # on the device
    manifest: dict[str, Any]  # kind, version, size, sha256, ... (release.describe_file)
    signature: str | None = None  # base64 DER ECDSA over SHA-256 of the file
    key: str = ""  # object key, once uploaded
    url: str = ""  # its S3-style URL, once uploaded

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "esp32-app"))


def parse_spec(text: str) -> tuple[int, Path, str | None]:
    """`ID=PATH[:TARGET]` -> (file id, local path, device path or None)."""
    m = SPEC_RE.match(text)
    if not m:
        raise ImageError(f"bad --file {text!r}: ID=PATH or ID=PATH:TARGET (e.g. 1=app.signed.bin "
                         "or 2=config.bin:/sd/config.bin)")
    file_id = int(m.group(1))
    if file_id > MAX_FILE_ID:
        raise ImageError(f"bad --file {text!r}: file id {file_id}, the ids are 0..{MAX_FILE_ID}")
    target = m.group(3)
    if target is not None:
        if not target or len(target) > MAX_FILEPATH or not target.isprintable() or \
                ".." in target.split("/"):
            raise ImageError(f"bad --file {text!r}: the device path must be 1..{MAX_FILEPATH} "
                             "printable characters without '..'")
    return file_id, Path(m.group(2)), target


def load_files(specs: list[str], chip: str = "esp32") -> list[OtaFile]:
    """Read and check every `--file` (a release manifest, an app image, an MCUboot image or a
    plain file); sorted by file id."""
    if len(specs) > MAX_FILES:
        raise ImageError(f"{len(specs)} files: an OTA update takes at most {MAX_FILES}")
    files: list[OtaFile] = []
    for spec in specs:
        file_id, path, target = parse_spec(spec)
        if any(f.file_id == file_id for f in files):
            raise ImageError(f"file id {file_id} is given twice")
        release = load_release(path, chip, kinds=KINDS)
        if file_id == 0 and release.manifest.get("kind", "esp32-app") != "esp32-app":
            raise ImageError(f"file id 0 is the ESP32's own app image; {path} is a "
                             f"{release.manifest.get('kind')} file: give it an id above 0")
        filepath = target or release.image.name
        if any(f.filepath == filepath for f in files):
            raise ImageError(f"two files would be stored as {filepath!r}: give a target path "
                             "(ID=PATH:TARGET)")
        sig = release.manifest.get("signature")
        files.append(OtaFile(file_id, release.image, filepath, release.manifest,
                             sig["value"] if isinstance(sig, dict) and sig.get("value") else None))
    return sorted(files, key=lambda f: f.file_id)


def sign_files(files: list[OtaFile], key_pem: bytes | None) -> None:
    """Sign every file with the key (PEM); without one, every file must already be signed
    (its release manifest carries a signature)."""
    for f in files:
        if key_pem is not None:
            f.signature = sign_image(read_file(f.path), key_pem)["value"]
        elif not f.signature:
            raise ImageError(f"file {f.file_id} ({f.path}) is not signed: give --sign KEY.pem")


def check_certificate(cert_pem: bytes, key_pem: bytes | None) -> None:
    """The code-signing certificate (PEM) must hold the public key of the signing key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        raise ImageError(f"not a PEM certificate: {str(e).splitlines()[0]}") from None
    if key_pem is None:
        return
    key = serialization.load_pem_private_key(key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise ImageError("the code-signing certificate does not hold the public key of the "
                         "--sign key")


def document(files: list[OtaFile], protocol: str, stream_id: str,
             certfile: str = DEFAULT_CERTFILE) -> dict[str, Any]:
    """The afr_ota document for the files (uploaded and signed) over MQTT, or over HTTP
    (protocol "https" or "http")."""
    entries = []
    for f in files:
        if f.signature is None:
            raise ImageError(f"file {f.file_id} ({f.path}) is not signed")
        entry: dict[str, Any] = {"fileid": f.file_id, "filepath": f.filepath,
                                 "filesize": f.size, "certfile": certfile,
                                 "sig-sha256-ecdsa": f.signature, "fileType": 0}
        if protocol != "mqtt":  # "https" (the CLI's name) or "http"
            entry["update_data_url"] = "${aws:iot:s3-presigned-url:" + f.url + "}"
            entry["auth_scheme"] = "aws.s3.presigned"
        entries.append(entry)
    ota: dict[str, Any] = {"protocols": ["MQTT"] if protocol == "mqtt" else ["HTTP"]}
    if protocol == "mqtt":
        ota["streamname"] = stream_id
    ota["files"] = entries
    return {"afr_ota": ota}


def signature_bytes(f: OtaFile) -> bytes:
    """The raw DER signature, as CreateOTAUpdate's customCodeSigning takes it."""
    assert f.signature is not None
    return base64.b64decode(f.signature)
