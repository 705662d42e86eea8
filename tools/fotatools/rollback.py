"""Fleet rollback: an older app image made a release under a newer version.

A board with a signer key takes only signed images of a version newer than the one it runs
(lib/fota/install.py `_admit`): going back to older code means that code under a new version
number. `rollback_image` rewrites the old image's `esp_app_desc_t.version` (char[32] at image
offset 48: the descriptor starts the first segment, at 32, after its magic, secure_version and
8 reserved bytes), then makes again what depends on those bytes, as esptool lays an image out:
the checksum (0xEF XORed with every segment data byte, the last byte of the padding that ends
the segments on a 16-byte boundary) and the appended SHA-256 (of everything before it). The
code, its other descriptor fields (project, build time, IDF version, ELF SHA-256) and
`secure_version` stay as they were: anti-rollback (eFuse secure versions) still refuses code
below the boards' secure version. The new image is then checked again with esptool's parser
and, with a key, signed like any release; nothing on the board changes and nothing there is
weakened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from .release import (APP_DESC_OFFSET, KIND_APP, MAX_VERSION_LEN, ImageError, Release,
                      _Reader, check_slots, check_version, inspect_image, load_release,
                      make_manifest, read_file, safe_name, sign_image)
from .partitions import Partition

VERSION_OFFSET = APP_DESC_OFFSET + 16  # esp_app_desc_t: magic, secure_version, reserv1[2]
VERSION_SIZE = 32


def version_key(version: str) -> list[int]:
    """The order a board puts versions in (lib/fota/install.py `_vkey`): dotted numbers with
    an optional leading v. ImageError for a version it cannot order."""
    v = version[1:] if version[:1] in "vV" else version
    try:
        return [int(x) for x in v.split(".")]
    except ValueError:
        raise ImageError(f"version {version!r} cannot be ordered as the boards order versions "
                         "(dotted numbers, e.g. 1.4.0)") from None


def rollback_image(data: bytes, version: str, chip: str = "esp32") -> bytes:
    """`data` (a valid app image) with its descriptor's version set to `version`, its checksum
    and appended SHA-256 made again."""
    from esptool.bin_image import ESP32FirmwareImage

    inspect_image(data, chip)  # a whole, valid app image with a descriptor, nothing after it
    check_version(version)
    raw = version.encode()
    if len(raw) > MAX_VERSION_LEN:
        raise ImageError(f"bad version {version!r}: at most {MAX_VERSION_LEN} bytes")
    out = bytearray(data)
    out[VERSION_OFFSET:VERSION_OFFSET + VERSION_SIZE] = raw.ljust(VERSION_SIZE, b"\0")
    img = ESP32FirmwareImage(_Reader(bytes(out)))
    end = img.data_length  # the checksum is its last byte, the SHA-256 follows
    out[end - 1] = img.calculate_checksum()
    out[end:end + 32] = hashlib.sha256(out[:end]).digest()
    new = bytes(out)
    app = inspect_image(new, chip)  # esptool's parser: checksum and digest as a board checks
    assert app.version == version
    return new


def build_rollback(old: Path, version: str, out_dir: Path | None = None,
                   sign_key: Path | None = None, chip: str = "esp32",
                   table: tuple[list[Partition], str] | None = None,
                   now: dt.datetime | None = None) -> tuple[Path, dict[str, Any]]:
    """The release of `old` (an app image, or a release manifest of one) as `version`:
    `<project>-<version>.bin` and `.json` in out_dir (default build/<project>-<version>).
    The manifest's "rollback_of" names the image it was made from."""
    release: Release = load_release(old, chip, kinds=(KIND_APP,))
    if release.manifest.get("kind", KIND_APP) != KIND_APP:
        raise ImageError(f"{old} is not an ESP32 app image release")
    data = read_file(release.image, "old image")
    was = inspect_image(data, chip)
    if version_key(version) <= version_key(was.version):
        raise ImageError(f"--version {version} is not newer than the old image's {was.version}: "
                         "a rollback goes out under a version newer than every board runs")
    if table is not None:
        check_slots(len(data), *table)
    new = rollback_image(data, version, chip)
    signature = sign_image(new, read_file(sign_key, "signing key")) if sign_key else None
    base = f"{safe_name(was.project)}-{safe_name(version)}"
    out = out_dir if out_dir is not None else Path("build") / base
    out.mkdir(parents=True, exist_ok=True)
    image_out = out / f"{base}.bin"
    image_out.write_bytes(new)
    manifest = make_manifest(inspect_image(new, chip), image_out.name, signature=signature,
                             now=now)
    manifest["rollback_of"] = {"version": was.version, "size": was.size, "md5": was.md5,
                               "sha256": was.sha256}
    path = out / f"{base}.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path, manifest
