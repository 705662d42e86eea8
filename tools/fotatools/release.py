"""Releases: check a file to publish and describe it in a manifest.

Three kinds of file, told apart by their first bytes:
- `esp32-app`: an ESP32 app image. `fota build FIRMWARE.bin` reads it with esptool's own parser,
  checks everything the ESP-IDF bootloader and `esp_ota_set_boot_partition` check (magic, chip,
  segments, checksum, appended SHA-256) and that it is an application (an `esp_app_desc_t` at
  image offset 32);
- `mcuboot`: an MCUboot image (header magic 0x96f3b83d), as imgtool signs it for a secondary
  MCU. imgtool's own reader checks the TLV area and the SHA-256 it holds; the version is the
  header's ih_ver, written "major.minor.revision+build";
- `file`: anything else (a data or configuration file); its version is given with --version.
Then `<project>-<version>.bin` and `<project>-<version>.json` (the manifest) go into a folder.

`fota build --app DIR` makes an application release instead: a ROMFS image of the folder
(see "application releases" below) and a manifest with kind "app".

Manifest fields: format, kind, file, version, project, size, md5, sha256, built_at (UTC, when
the release was made) and, when the file is signed, signature ({"algorithm":
"ecdsa-p256-sha256", "value": base64 DER, "public_key": PEM}). An app image adds chip, idf_ver,
secure_version, app_date (compile date and time from the descriptor), elf_sha256; an MCUboot
image adds mcuboot ({"header_size", "image_size", "hash": the SHA-256 TLV in hex}).
A manifest without a kind (made by an older fota) is an app image.

`fota build --compress [--window BITS]` also writes `<project>-<version>.deflate` (app images
only): the image cut into 64 KB pieces, each compressed as its own zlib stream with a window of
2**BITS bytes (the RAM the device's inflater allocates for it; the device takes at most 2**12).
Pieces let a device resume a broken download at a piece instead of starting over. The
manifest's "compressed" says: file, encoding ("deflate"), wbits, piece, size, md5, and
one_stream_size (the same image as one zlib stream, what the pieces cost). A compressed file
(or a delta patch, see delta.py) that is not smaller than the image is not kept: the
manifest's "not_kept" ({"compressed": why, "delta": why}) says so, and `publish` sends the
image itself.

An app image must fit the OTA slots of the partition table the board is built with
(`check_slots`; `fota build` reads the table of the project's board of --chip,
firmware/FOTA_ESP32/partitions.csv on an esp32, firmware/FOTA_ESP32S3/partitions.csv on an
esp32s3, ..., or --partitions FILE).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import shutil
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from esptool.bin_image import ESP32FirmwareImage
from esptool.util import FatalError

from .partitions import Partition, ota_slots

MANIFEST_FORMAT = "fota-release/1"
IMAGE_MAGIC = 0xE9
APP_DESC_MAGIC = 0xABCD5432
APP_DESC_OFFSET = 32  # 24-byte image header + 8-byte first segment header
APP_DESC = struct.Struct("<II8s32s32s16s16s32s32s")  # the used part of esp_app_desc_t
CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9, "esp32c2": 12,
            "esp32c6": 13, "esp32h2": 16, "esp32p4": 18}
MAX_VERSION_LEN = 31  # esp_app_desc_t.version is char[32], NUL-terminated
SIGNATURE_ALGORITHM = "ecdsa-p256-sha256"
PIECE = 65536  # image bytes per independently compressed piece (lib/fota/inflate.py: PIECE)
# A device asks its inflater for at most INFLATE_STEP image bytes at a time, within one
# INFLATE_STEP-aligned span of a piece, with at least INFLATE_LOW compressed bytes in its buffer
# (lib/fota/inflate.py: STEP, LOW): every span of a piece must come from fewer.
INFLATE_STEP = 1024
INFLATE_LOW = 2 * INFLATE_STEP + 512
DEFAULT_WBITS = 12  # 4 KB window: the largest a device takes (lib/fotaplan.py: MAX_WBITS)
MIN_WBITS, MAX_WBITS = 9, 15  # what zlib makes
KIND_APP, KIND_MCUBOOT, KIND_FILE = "esp32-app", "mcuboot", "file"
KINDS = (KIND_APP, KIND_MCUBOOT, KIND_FILE)
MCUBOOT_MAGIC = 0x96F3B83D


class ImageError(ValueError):
    """The file is not a valid ESP32 app image; the message is one line for a user."""


@dataclass
class AppImage:
    """What a release needs to know about an app image."""

    size: int
    md5: str
    sha256: str
    chip: str
    version: str
    project: str
    idf_ver: str
    secure_version: int
    app_date: str
    elf_sha256: str
    segments: int


PARTITION_TABLE_IN_FULL_IMAGE = 0x7000  # 0x8000 on flash, images start at 0x1000 (ESP32)


def looks_like_full_image(data: bytes) -> bool:
    """A merged ESP32 flash image written at 0x1000: bootloader, then the partition table."""
    off = PARTITION_TABLE_IN_FULL_IMAGE
    return data[:1] == bytes([IMAGE_MAGIC]) and data[off:off + 2] == b"\xaa\x50"


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _chip_name(chip_id: int) -> str:
    for name, cid in CHIP_IDS.items():
        if cid == chip_id:
            return name
    return f"chip id {chip_id}"


def inspect_image(data: bytes, chip: str | None = "esp32") -> AppImage:
    """Check that `data` is a complete, valid app image for `chip` and describe it; chip None:
    for the chip its header names (esp_image_header_t.chip_id, as esptool reads it).

    Raises ImageError with a one-line reason otherwise.
    """
    if not data:
        raise ImageError("empty file, not an ESP32 app image")
    if data[0] != IMAGE_MAGIC:
        raise ImageError(f"not an ESP32 image (magic 0x{data[0]:02x}, expected 0xe9)")
    if len(data) < APP_DESC_OFFSET + APP_DESC.size:
        raise ImageError(f"too short for an ESP32 app image ({len(data)} bytes)")
    try:
        img = ESP32FirmwareImage(_Reader(data))
    except (FatalError, struct.error, TypeError, ValueError, RuntimeError, IndexError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageError(f"truncated or malformed image ({reason})") from None
    if chip is None:
        chip = _chip_name(img.chip_id)
        if chip not in CHIP_IDS:
            raise ImageError(f"image is for {chip}, which fota does not know")
    want = CHIP_IDS[chip]
    if img.chip_id != want:
        found = _chip_name(img.chip_id)
        hint = f" (--chip {found} if it is for {found} boards)" if found in CHIP_IDS else ""
        raise ImageError(f"image is for {found}, not {chip}{hint}")
    if not img.segments:
        raise ImageError("image has no segments")
    if img.checksum != img.calculate_checksum():
        raise ImageError(f"bad checksum (stored 0x{img.checksum:02x}, "
                         f"computed 0x{img.calculate_checksum():02x})")
    if not img.append_digest:
        raise ImageError("image has no appended SHA-256 (hash_appended=0); "
                         "ESP-IDF app images for OTA carry one")
    if len(img.stored_digest) != 32:
        raise ImageError("truncated image: the appended SHA-256 is incomplete")
    if img.stored_digest != img.calc_digest:
        raise ImageError("bad SHA-256: the image does not match its appended hash")
    (magic, secure_version, _r, version, project, time_, date, idf_ver,
     elf_sha) = APP_DESC.unpack_from(data, APP_DESC_OFFSET)
    if magic != APP_DESC_MAGIC:
        if looks_like_full_image(data):
            raise ImageError("a full flash image (bootloader, partition table, app), not an app "
                             "image: give the app alone (micropython.bin or an .app-bin)")
        raise ImageError("not an app image: no esp_app_desc_t at offset 32 "
                         "(a bootloader or another kind of image?)")
    end = img.data_length + 32
    if len(data) != end:
        raise ImageError(f"{len(data) - end} unexpected bytes after the image's SHA-256")
    return AppImage(
        size=len(data),
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        chip=chip,
        version=_cstr(version),
        project=_cstr(project),
        idf_ver=_cstr(idf_ver),
        secure_version=secure_version,
        app_date=f"{_cstr(date)} {_cstr(time_)}".strip(),
        elf_sha256=elf_sha.hex(),
        segments=len(img.segments),
    )


class _Reader:
    """A file-like view of bytes whose short reads esptool notices as errors."""

    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk = self._data[self._pos:end]
        self._pos += len(chunk)
        return chunk

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._data)}[whence]
        self._pos = max(0, base + pos)
        return self._pos


@dataclass
class McubootImage:
    """What a release needs to know about an MCUboot image."""

    version: str  # ih_ver as "major.minor.revision+build"
    header_size: int
    image_size: int
    hash: str  # the SHA-256 TLV, hex


def kind_of(data: bytes) -> str:
    """esp32-app, mcuboot or file, from the first bytes."""
    if data[:1] == bytes([IMAGE_MAGIC]):
        return KIND_APP
    if len(data) >= 4 and struct.unpack_from("<I", data)[0] == MCUBOOT_MAGIC:
        return KIND_MCUBOOT
    return KIND_FILE


def inspect_mcuboot(path: Path, key_path: Path | None = None) -> McubootImage:
    """Check an MCUboot image with imgtool's reader (magic, TLV area, the SHA-256 TLV against the
    header and body; with `key_path`, the signature TLV against that key, as the secondary's
    MCUboot will) and read its version. ImageError with a one-line reason otherwise."""
    from imgtool import keys
    from imgtool.image import IMAGE_HEADER_SIZE, Image, VerifyResult

    data = read_file(path, "MCUboot image")
    if len(data) < IMAGE_HEADER_SIZE:
        raise ImageError(f"{path}: too short for an MCUboot image ({len(data)} bytes)")
    key = None
    if key_path is not None:
        read_file(key_path, "MCUboot key")
        try:
            key = keys.load(str(key_path))
        except Exception as e:  # imgtool raises bare Exceptions for unsupported keys
            raise ImageError(f"{key_path}: not an MCUboot key imgtool takes "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        if key is None:
            raise ImageError(f"{key_path}: an encrypted key; give the public key instead")
    try:
        result, version, digest, _ = Image.verify(str(path), key)
    except (struct.error, ValueError, IndexError):
        result, version, digest = None, None, None
    header_size, _, image_size = struct.unpack_from("<HHI", data, 8)
    if result is None or result == VerifyResult.INVALID_TLV_INFO_MAGIC:
        raise ImageError(f"{path}: truncated or malformed MCUboot image (no TLV area after the "
                         f"{header_size}-byte header and {image_size}-byte body)")
    if result in (VerifyResult.INVALID_SIGNATURE, VerifyResult.KEY_MISMATCH):
        raise ImageError(f"{path}: not signed with the MCUboot key {key_path} ({result.name}): "
                         "the secondary's MCUboot would refuse it")
    if result == VerifyResult.INVALID_HASH:
        raise ImageError(f"{path}: bad MCUboot image: the SHA-256 TLV does not match the header "
                         "and body")
    if result != VerifyResult.OK or version is None or digest is None:
        raise ImageError(f"{path}: bad MCUboot image ({result.name}; no SHA-256 TLV?)")
    major, minor, revision, build = version
    return McubootImage(version=f"{major}.{minor}.{revision}+{build}", header_size=header_size,
                        image_size=image_size, hash=bytes(digest).hex())


def describe_file(path: Path, version: str | None = None, chip: str | None = "esp32",
                  data: bytes | None = None, hash_version: bool = False,
                  mcuboot_key: Path | None = None) -> dict[str, Any]:
    """The manifest fields of any file to publish (no signature, no built_at): its kind, version
    (from the app descriptor, the MCUboot header, or `version` for a plain file; with
    `hash_version` a plain file without one is versioned by the start of its SHA-256) and
    hashes."""
    data = read_file(path) if data is None else data
    kind = kind_of(data)
    if mcuboot_key is not None and kind != KIND_MCUBOOT:
        raise ImageError(f"{path} is not an MCUboot image: --mcuboot-key goes with one")
    if kind == KIND_APP:
        app = inspect_image(data, chip)
        info = asdict(app)
        del info["segments"]
        info = {"kind": kind, **info,
                "version": check_version(version if version is not None else app.version)}
        if version is not None and version != app.version:
            info["app_version"] = app.version
        return info
    common = {"size": len(data), "md5": hashlib.md5(data).hexdigest(),
              "sha256": hashlib.sha256(data).hexdigest()}
    project = safe_name(path.name.split(".", 1)[0])
    if kind == KIND_MCUBOOT:
        img = inspect_mcuboot(path, mcuboot_key)
        if version is not None and version != img.version:
            raise ImageError(f"{path} is an MCUboot image of version {img.version} (its header's "
                             f"ih_ver); --version {version} would not match what the device "
                             "reports: sign it again with imgtool --version")
        return {"kind": kind, "version": img.version, "project": project, **common,
                "mcuboot": {"header_size": img.header_size, "image_size": img.image_size,
                            "hash": img.hash}}
    if not data:
        raise ImageError(f"{path}: empty file")
    if version is None and hash_version:
        version = common["sha256"][:12]
    if version is None:
        raise ImageError(f"{path}: not an ESP32 image (magic 0x{data[0]:02x}) nor an MCUboot "
                         "image; a plain file has no version of its own: give it one with "
                         "--version")
    return {"kind": kind, "version": check_version(version), "project": project, **common}


def safe_name(text: str) -> str:
    """A file-name-safe form of a version or project name."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._")
    return name or "app"


def check_version(version: str) -> str:
    if not version or len(version) > MAX_VERSION_LEN or not version.isprintable():
        raise ImageError(f"bad version {version!r}: 1..{MAX_VERSION_LEN} printable characters")
    return version


def sign_image(data: bytes, key_pem: bytes) -> dict[str, str]:
    """ECDSA P-256 signature over SHA-256 of the image (as AWS code signing does for FreeRTOS)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise ImageError(f"cannot read the signing key: {str(e).splitlines()[0]}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ImageError("the signing key must be an unencrypted EC P-256 (prime256v1) key")
    der = key.sign(data, ec.ECDSA(hashes.SHA256()))
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"algorithm": SIGNATURE_ALGORITHM, "value": base64.b64encode(der).decode(),
            "public_key": pub.decode()}


def verify_signature(data: bytes, signature: dict[str, str], public_key_pem: bytes) -> bool:
    """True if `signature` (as in a manifest) is valid for `data` under the given key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        return False
    key = serialization.load_pem_public_key(public_key_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(base64.b64decode(signature["value"]), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def compress_image(data: bytes, wbits: int = DEFAULT_WBITS, piece: int = PIECE) -> bytes:
    """The image as pieces of `piece` bytes, each its own zlib stream (level 9, 2**wbits
    window), one after the other: what a device inflates for "bc_enc": "deflate"."""
    if not MIN_WBITS <= wbits <= MAX_WBITS:
        raise ImageError(f"bad window {wbits}: {MIN_WBITS}..{MAX_WBITS} bits")
    out = bytearray()
    for i in range(0, len(data), piece):
        c = zlib.compressobj(9, zlib.DEFLATED, wbits)
        out += c.compress(data[i:i + piece]) + c.flush()
    return bytes(out)


def one_stream_size(data: bytes, wbits: int) -> int:
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return len(c.compress(data) + c.flush())


# zlib may take a few bytes more than the device's inflater (uzlib) for the same output (it
# reads the next code before it finds no room for its byte): checked with this much to spare.
_SPAN_SLACK = 16


def inflate_pieces(packed: bytes, piece: int = PIECE) -> bytes:
    """compress_image undone, with the same checks as a device: every piece a whole zlib
    stream of `piece` bytes (the last one shorter), nothing after the last, and each
    INFLATE_STEP-aligned span of a piece (and its end) from fewer than INFLATE_LOW compressed
    bytes, as the device's buffer holds them."""
    out = bytearray()
    view = memoryview(packed)
    limit = INFLATE_LOW - _SPAN_SLACK
    pos = 0
    while pos < len(packed):
        k = len(out) // piece
        d = zlib.decompressobj()
        got = 0
        while not d.eof and got <= piece:
            want = INFLATE_STEP if got < piece else 1
            span = view[pos:pos + limit]
            try:
                chunk = d.decompress(span, want)
            except zlib.error as e:
                raise ImageError(f"piece {k} is not valid zlib data ({e})") from None
            pos += len(span) - len(d.unused_data if d.eof else d.unconsumed_tail)
            out += chunk
            got += len(chunk)
            if len(chunk) < want and not d.eof:
                if pos >= len(packed):
                    break  # the file ends in the piece
                raise ImageError(f"piece {k} takes more than {limit} compressed bytes for "
                                 f"{want} image bytes: a device inflates {INFLATE_STEP} at a "
                                 f"time from a buffer of {INFLATE_LOW}")
        if not d.eof or got > piece or (got < piece and pos < len(packed)):
            raise ImageError(f"piece {k} is not a whole piece of {piece} bytes")
    return bytes(out)


def compressed_info(data: bytes, packed: bytes, file_name: str, wbits: int) -> dict[str, Any]:
    return {"file": file_name, "encoding": "deflate", "wbits": wbits, "piece": PIECE,
            "size": len(packed), "md5": hashlib.md5(packed).hexdigest(),
            "one_stream_size": one_stream_size(data, wbits)}


def make_manifest(app: AppImage, file_name: str, version: str | None = None,
                  signature: dict[str, str] | None = None,
                  now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.timezone.utc)
    info = asdict(app)
    del info["segments"]
    manifest: dict[str, Any] = {"format": MANIFEST_FORMAT, "kind": KIND_APP, "file": file_name,
                                **info}
    manifest["version"] = check_version(version) if version else check_version(app.version)
    if version and version != app.version:
        manifest["app_version"] = app.version
    manifest["built_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if signature:
        manifest["signature"] = signature
    return manifest


def check_slots(size: int, table: list[Partition], source: str) -> None:
    """An app image of `size` bytes must fit every OTA slot of the board's partition table:
    an update is written into whichever slot does not run. ImageError otherwise."""
    slots = ota_slots(table)
    if not slots:
        raise ImageError(f"{source} has no OTA app slots (ota_0, ota_1): a board with that "
                         "table cannot take a firmware update")
    small = min(slots, key=lambda p: p.size)
    if size > small.size:
        names = ", ".join(p.name for p in slots if p.size == small.size)
        raise ImageError(f"the image is {size:,} bytes, larger than the {small.size:,}-byte "
                         f"OTA slot{'s' if ',' in names else ''} ({names}) of {source}")


def build_release(image_path: Path, out_dir: Path | None = None, version: str | None = None,
                  sign_key: Path | None = None, chip: str = "esp32",
                  compress: int | None = None,
                  mcuboot_key: Path | None = None,
                  table: tuple[list[Partition], str] | None = None) -> tuple[Path, dict[str, Any]]:
    """Check the file and write `<project>-<version>.bin` + `.json` into out_dir
    (default `build/<project>-<version>`), and with `compress` (window bits; app images only)
    the compressed `.deflate` when it is smaller than the image (else the manifest's
    "not_kept" says why); return the manifest path and the manifest. `table` (partitions,
    where they come from): an app image must fit its OTA slots."""
    data = read_file(image_path)
    if table is not None and kind_of(data) == KIND_APP:  # too big is reason enough, first
        check_slots(len(data), *table)
    info = describe_file(image_path, version, chip, data, mcuboot_key=mcuboot_key)
    if compress is not None and info["kind"] != KIND_APP:  # before anything is written
        raise ImageError(f"--compress is for ESP32 app images; {image_path} is a {info['kind']} file")
    signature = sign_image(data, read_file(sign_key, "signing key")) if sign_key else None
    base = f"{safe_name(str(info['project']))}-{safe_name(str(info['version']))}"
    out = out_dir if out_dir is not None else Path("build") / base
    out.mkdir(parents=True, exist_ok=True)
    suffix = image_path.suffix if info["kind"] == KIND_FILE and image_path.suffix else ".bin"
    image_out = out / f"{base}{suffix}"
    if image_out.name == f"{base}.json":  # a plain JSON file: not to be taken for the manifest
        image_out = out / f"{base}.data.json"
    now = dt.datetime.now(dt.timezone.utc)
    manifest: dict[str, Any] = {"format": MANIFEST_FORMAT, "file": image_out.name, **info,
                                "built_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if signature:
        manifest["signature"] = signature
    if image_out.resolve() != image_path.resolve():
        shutil.copyfile(image_path, image_out)
    if compress is not None:
        packed = compress_image(data, compress)
        packed_path = out / f"{base}.deflate"
        if len(packed) < len(data):
            packed_path.write_bytes(packed)
            manifest["compressed"] = compressed_info(data, packed, packed_path.name, compress)
        else:  # it would cost the devices more than the image itself
            packed_path.unlink(missing_ok=True)  # an earlier build's, not this image's
            manifest["not_kept"] = {"compressed": (
                f"deflate made {len(packed):,} bytes, not fewer than the image's "
                f"{len(data):,}: the image is sent itself")}
    manifest_path = out / f"{base}.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path, manifest


def read_file(path: Path, what: str = "file") -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{what} is a directory: {path}") from None
    except OSError as e:
        raise ImageError(f"cannot read {path}: {e.strerror}") from None


@dataclass
class Release:
    """A release ready to publish: the image file and its manifest."""

    image: Path
    manifest: dict[str, Any]
    compressed: Path | None = None  # the .deflate file, when the release has one


def load_release(path: Path, chip: str | None = "esp32", kinds: tuple[str, ...] = (KIND_APP,)) -> Release:
    """Open a release from its manifest (.json) or straight from a file, of one of `kinds`.

    With a manifest, the file next to it must still match the manifest's size and hashes.
    """
    manifest: Any = None
    if path.suffix.lower() == ".json":
        try:
            manifest = json.loads(read_file(path, "manifest"))
        except json.JSONDecodeError as e:
            if KIND_FILE not in kinds:
                raise ImageError(f"{path} is not a JSON manifest ({e.msg})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            if KIND_FILE not in kinds:
                raise ImageError(f"{path} is not a fota release manifest")
            manifest = None  # a JSON file to publish as it is
    if manifest is not None:
        for key in ("file", "version", "project", "size", "md5", "sha256"):
            if key not in manifest:
                raise ImageError(f"manifest {path} lacks {key!r}")
        kind = str(manifest.get("kind", KIND_APP))
        image = path.parent / str(manifest["file"])
        if kind == APP_KIND and KIND_APP in kinds:  # an application release (fota build --app)
            data = read_file(image, "release image")
            check_app_image(data, int(manifest.get("slot_size", APP_SLOT_SIZE)),
                            str(manifest.get("arch", "xtensawin")))
            if (len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()) != (
                    manifest["size"], manifest["md5"], manifest["sha256"]):
                raise ImageError(f"{image} does not match its manifest (size or hash differ)")
            check_version(str(manifest["version"]))
            return Release(image, manifest)
        if kind not in KINDS:
            raise ImageError(f"manifest {path}: unknown kind {kind!r}")
        _check_kind(path, kind, kinds)
        data = read_file(image, "release file")
        info = describe_file(image, str(manifest["version"]) if kind == KIND_FILE else None,
                             manifest.get("chip") or chip, data)
        if info["kind"] != kind:
            raise ImageError(f"{image} is not the {kind} its manifest says (it reads as "
                             f"{info['kind']})")
        if (info["size"], info["md5"], info["sha256"]) != (manifest["size"], manifest["md5"],
                                                           manifest["sha256"]):
            raise ImageError(f"{image} does not match its manifest (size or hash differ)")
        check_version(str(manifest["version"]))
        return Release(image, manifest, _load_compressed(path, manifest, data))
    data = read_file(path, "firmware image")
    if kinds == (KIND_APP,) and data.startswith(b"\xd2\xcd\x31"):  # ROMFS: an application release
        info = check_app_image(data)
        return Release(path, {"format": MANIFEST_FORMAT, "kind": APP_KIND, "file": path.name,
                              "version": info["version"], "project": safe_name(path.stem),
                              "size": len(data), "md5": hashlib.md5(data).hexdigest(),
                              "sha256": hashlib.sha256(data).hexdigest(), "arch": info["arch"]})
    kind = kind_of(data)
    if kinds == (KIND_APP,):  # an app image is expected: say why this one is not
        if kind == KIND_MCUBOOT:
            _check_kind(path, kind, kinds)
        return Release(path, make_manifest(inspect_image(data, chip), path.name))
    _check_kind(path, kind, kinds)
    info = describe_file(path, None, chip, data, hash_version=True)
    return Release(path, {"format": MANIFEST_FORMAT, "file": path.name, **info})


def _check_kind(path: Path, kind: str, kinds: tuple[str, ...]) -> None:
    if kind in kinds:
        return
    hint = ""
    if kinds == (KIND_APP,):
        hint = " (a single RELEASE is the ESP32's app image; publish other files with --file ID=PATH)"
    raise ImageError(f"{path} holds a {kind} file, not {' or '.join(kinds)}{hint}")


def _load_compressed(path: Path, manifest: dict[str, Any], data: bytes) -> Path | None:
    """The manifest's compressed file, checked: its size and MD5, and that it inflates, piece
    by piece as a device does, to the image."""
    info = manifest.get("compressed")
    if info is None:
        return None
    if (not isinstance(info, dict) or info.get("encoding") != "deflate"
            or info.get("piece") != PIECE or not isinstance(info.get("wbits"), int)
            or not isinstance(info.get("file"), str)):
        raise ImageError(f"manifest {path}: \"compressed\" is not a deflate file of "
                         f"{PIECE}-byte pieces")
    if not MIN_WBITS <= info["wbits"] <= MAX_WBITS:
        raise ImageError(f"manifest {path}: bad window {info['wbits']}")
    packed_path = path.parent / info["file"]
    packed = read_file(packed_path, "compressed image")
    if (len(packed), hashlib.md5(packed).hexdigest()) != (info.get("size"), info.get("md5")):
        raise ImageError(f"{packed_path} does not match its manifest (size or hash differ)")
    if inflate_pieces(packed) != data:
        raise ImageError(f"{packed_path} does not inflate to the image")
    return packed_path


# ---------------------------------------------------------------- application releases
# An application release is a ROMFS image of the application's folder (appimage.py): `app.mpy`
# at its top (the module the device's main.py imports), `VERSION` (its version, as text) and
# whatever else the folder holds. The same image serves both device routes: a board with ROMFS
# (FOTA_ESP32) writes it into its other ROMFS slot and runs it in place; a stock firmware
# unpacks it into its other app folder (/app0, /app1) as it downloads.
APP_SLOT_SIZE = 0x20000  # half of FOTA_ESP32's 256 KB "romfs" partition (partitions.csv)
APP_ENTRY = "app"  # app.py in the folder -> app.mpy in the image
APP_KIND = "app"
APP_MPY_VERSION = 6  # bytecode version of MicroPython 1.29 (mpy-cross 1.29 emits it)


def check_app_image(image: bytes, slot_size: int = APP_SLOT_SIZE,
                    arch: str = "xtensawin") -> dict[str, Any]:
    """What the host checks of an application image before it is published: a ROMFS image,
    the entry module, VERSION, .mpy files of bytecode v6 and no other architecture's native
    code, no bigger than a slot. -> {"version", "files", "arch"}; ImageError otherwise."""
    from fotatools.appimage import AppImageError, describe_romfs, romfs_files
    try:
        files = romfs_files(image)
        summary = describe_romfs(image)
    except AppImageError as e:
        raise ImageError(str(e)) from None
    if len(image) > slot_size:
        raise ImageError(f"the image is {len(image)} bytes, an application slot holds "
                         f"{slot_size}")
    if f"{APP_ENTRY}.mpy" not in files and f"{APP_ENTRY}.py" not in files:
        raise ImageError(f"no {APP_ENTRY}.py at the top of the application (the module the "
                         "device's main.py imports)")
    for path, info in summary.mpy.items():
        if info.version != APP_MPY_VERSION:
            raise ImageError(f"{path}: .mpy version {info.version}, the firmware loads "
                             f"version {APP_MPY_VERSION}")
        if info.arch not in ("none", arch):
            raise ImageError(f"{path}: native code for {info.arch}, the board is {arch}")
    version = files.get("VERSION", b"").decode("utf-8", "replace").strip()
    check_version(version)
    return {"version": version, "files": len(files), "arch": arch}


def build_app_release(folder: Path, out_dir: Path | None = None, version: str | None = None,
                      sign_key: Path | None = None, arch: str = "xtensawin",
                      slot_size: int = APP_SLOT_SIZE) -> tuple[Path, dict[str, Any]]:
    """`fota build --app DIR`: the ROMFS image of DIR (`.py` compiled for `arch`, VERSION
    written in) and its manifest, in out_dir (default build/<name>-app-<version>)."""
    from fotatools.appimage import AppImageError, build_romfs
    if not folder.is_dir():
        raise ImageError(f"application folder not found: {folder}")
    if not (folder / f"{APP_ENTRY}.py").is_file() and not (folder / f"{APP_ENTRY}.mpy").is_file():
        raise ImageError(f"{folder} has no {APP_ENTRY}.py (the module the device's main.py "
                         "imports)")
    if version is None:
        try:
            version = (folder / "VERSION").read_text().strip()
        except OSError:
            raise ImageError(f"no version: give --version or put a VERSION file in {folder}"
                             ) from None
    check_version(version)
    try:
        image = build_romfs(folder, arch, extra={"VERSION": version.encode()})
    except AppImageError as e:
        raise ImageError(str(e)) from None
    info = check_app_image(image, slot_size, arch)
    signature = sign_image(image, read_file(sign_key, "signing key")) if sign_key else None
    project = safe_name(folder.resolve().name)
    base = f"{project}-app-{safe_name(version)}"
    out = out_dir if out_dir is not None else Path("build") / base
    out.mkdir(parents=True, exist_ok=True)
    image_out = out / f"{base}.romfs"
    image_out.write_bytes(image)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT, "kind": APP_KIND, "file": image_out.name, "version": version,
        "project": project, "size": len(image), "md5": hashlib.md5(image).hexdigest(),
        "sha256": hashlib.sha256(image).hexdigest(), "arch": arch,
        "mpy_version": APP_MPY_VERSION, "files": info["files"], "slot_size": slot_size,
        "built_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if signature:
        manifest["signature"] = signature
    manifest_path = out / f"{base}.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path, manifest
