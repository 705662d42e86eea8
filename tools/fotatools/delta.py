"""Delta releases: a detools sequential patch from an older app image to a release's image.

`fota build NEW.bin --from OLD.bin` checks both images with esptool's parser, makes the patch
with detools (bsdiff; heatshrink or crle inside, whichever is smaller, by default) and writes `<project>-<version>.patch` next to the
release, with a "delta" entry in the manifest: file, base_sha256 (the SHA-256 appended to the
base image, what `esptool image-info` calls its validation hash and what the device reads from
its running slot), base_version, size, md5, compression and, for heatshrink, window_sz2 and
lookahead_sz2. The patch is applied back with detools before it is written. A patch that is
not smaller than the image is not kept: the manifest's "not_kept" says why, and devices get
the image itself.

`fota publish` then sends the patch to the devices that run the base and the whole image to
the rest in one document (lib/fotaplan.py: bc_enc "delta", bc_base, bc_zsize, bc_full).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import detools
from esptool.bin_image import ESP32FirmwareImage

from .release import ImageError, _Reader, inspect_image, read_file

COMPRESSIONS = ("heatshrink", "crle", "none")  # what the device applies (lib/delta.py)
SMALLEST = "smallest"  # heatshrink and crle both made, the smaller kept: heatshrink wins on
#                        releases apart, crle on small changes (long runs of zero differences)
DEVICE_MAX_WINDOW = 12  # lib/delta.py MAX_WINDOW: the largest heatshrink window devices take
DEFAULT_WINDOW, DEFAULT_LOOKAHEAD = 8, 7  # detools' defaults (esp_delta_ota's too)
_COMPRESSION_IDS = {"none": 0, "crle": 2, "heatshrink": 4}


def base_sha256(data: bytes) -> str:
    """The SHA-256 appended to an app image, read with esptool's parser (after the checks of
    `inspect_image`, which also compares it with the image's own hash)."""
    inspect_image(data)
    return ESP32FirmwareImage(_Reader(data)).stored_digest.hex()


def make_patch(old: bytes, new: bytes, compression: str = "heatshrink",
               window: int = DEFAULT_WINDOW, lookahead: int = DEFAULT_LOOKAHEAD) -> bytes:
    """A detools sequential patch from `old` to `new`, checked by applying it back."""
    if compression not in COMPRESSIONS:
        raise ImageError(f"compression {compression!r}: devices apply {', '.join(COMPRESSIONS)}")
    if compression == "heatshrink" and not (4 <= window <= DEVICE_MAX_WINDOW
                                            and 3 <= lookahead < window):
        raise ImageError(f"heatshrink window {window} / lookahead {lookahead} bits: devices "
                         f"take windows of 4..{DEVICE_MAX_WINDOW} bits, lookahead 3..window-1")
    out = io.BytesIO()
    detools.create_patch(io.BytesIO(old), io.BytesIO(new), out, compression=compression,
                         heatshrink_window_sz2=window, heatshrink_lookahead_sz2=lookahead)
    patch = out.getvalue()
    back = io.BytesIO()
    detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), back)
    if back.getvalue() != new:  # detools itself would be broken: never ship that
        raise ImageError("the patch does not make the new image")
    return patch


def patch_header(patch: bytes) -> tuple[str, int, int | None]:
    """(compression, image size, heatshrink window bits or None) from a sequential patch's
    header (lib/delta.py describes the format)."""
    if len(patch) < 2 or patch[0] >> 4:
        raise ImageError("not a detools sequential patch")
    names = {v: k for k, v in _COMPRESSION_IDS.items()}
    if patch[0] & 15 not in names:
        raise ImageError(f"patch compression {patch[0] & 15} is not one devices apply")
    i, b = 1, patch[1]
    size, shift = b & 0x3F, 6
    while b & 0x80:
        i += 1
        if i >= len(patch):
            raise ImageError("truncated patch header")
        b = patch[i]
        size |= (b & 0x7F) << shift
        shift += 7
    compression = names[patch[0] & 15]
    window = None
    if compression == "heatshrink":
        if i + 1 >= len(patch):
            raise ImageError("truncated patch header")
        window = (patch[i + 1] >> 4) + 4
    return compression, size, window


def add_delta(manifest_path: Path, base: Path, compression: str = SMALLEST,
              window: int = DEFAULT_WINDOW,
              lookahead: int = DEFAULT_LOOKAHEAD) -> dict[str, Any] | None:
    """Make the patch from `base` to the release of `manifest_path`, write it next to it and
    record it in the manifest; -> the "delta" entry. A patch not smaller than the image is
    not kept (devices would fetch more than the image): the manifest's "not_kept" says why,
    and -> None."""
    manifest = json.loads(manifest_path.read_text())
    new = read_file(manifest_path.parent / manifest["file"], "release image")
    old = read_file(base, "base image")
    sha = base_sha256(old)
    if sha == base_sha256(new):
        raise ImageError("the base image is the release image itself")
    if compression == SMALLEST:
        patch, compression = min(((make_patch(old, new, c, window, lookahead), c)
                                  for c in ("heatshrink", "crle")), key=lambda pc: len(pc[0]))
    else:
        patch = make_patch(old, new, compression, window, lookahead)
    name = Path(manifest["file"]).stem + ".patch"
    if len(patch) >= len(new):
        (manifest_path.parent / name).unlink(missing_ok=True)  # an earlier build's
        manifest.pop("delta", None)
        manifest.setdefault("not_kept", {})["delta"] = (
            f"the patch from {inspect_image(old).version} is {len(patch):,} bytes, not fewer "
            f"than the image's {len(new):,}: the image is sent itself")
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        return None
    (manifest_path.parent / name).write_bytes(patch)
    info: dict[str, Any] = {"file": name, "base_sha256": sha,
                            "base_version": inspect_image(old).version, "size": len(patch),
                            "md5": hashlib.md5(patch).hexdigest(), "compression": compression}
    if compression == "heatshrink":
        info.update(window_sz2=window, lookahead_sz2=lookahead)
    manifest["delta"] = info
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return info


def load_delta(manifest_path: Path, manifest: dict[str, Any]) -> Path | None:
    """The manifest's patch, checked (size, MD5, header: sequential, a compression devices
    apply, the release image's size), or None if the release has none."""
    info = manifest.get("delta")
    if info is None:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("file"), str) or not (
            isinstance(info.get("base_sha256"), str) and len(info["base_sha256"]) == 64):
        raise ImageError(f"manifest {manifest_path}: \"delta\" needs file and base_sha256")
    path = manifest_path.parent / info["file"]
    patch = read_file(path, "patch")
    if (len(patch), hashlib.md5(patch).hexdigest()) != (info.get("size"), info.get("md5")):
        raise ImageError(f"{path} does not match its manifest (size or hash differ)")
    compression, size, window = patch_header(patch)
    if size != manifest["size"]:
        raise ImageError(f"{path} makes {size} bytes, the release image has {manifest['size']}")
    if window is not None and window > DEVICE_MAX_WINDOW:
        raise ImageError(f"{path}: a heatshrink window of 2**{window} bytes, devices take at "
                         f"most 2**{DEVICE_MAX_WINDOW}")
    return path


def delta_fields(manifest: dict[str, Any], patch_url: str, full_url: str | None) -> dict[str, Any]:
    """The fields that make a Zerynth-style document a delta one: the patch at bc_url for
    devices that run the base, the whole image at bc_full (None: the patch alone) for the
    rest. bc_size, bc_crc and bc_sig stay the image's."""
    info = manifest["delta"]
    out: dict[str, Any] = {"bc_enc": "delta", "bc_base": info["base_sha256"],
                           "bc_zsize": info["size"],
                           "bc_url": "${aws:iot:s3-presigned-url:" + patch_url + "}"}
    if full_url is not None:
        out["bc_full"] = "${aws:iot:s3-presigned-url:" + full_url + "}"
    return out
