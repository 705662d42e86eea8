"""MCUboot images: read the header and TLVs, validate as the bootloader does, and build small
ones (the secondary's factory image, test images).

Format as MCUboot's docs/design.md ("Image format") and imgtool describe it, little-endian:
a 32-byte header (magic 0x96f3b83d, load_addr u32, hdr_size u16, protect_tlv_size u16,
img_size u32, flags u32, version major u8 / minor u8 / revision u16 / build_num u32, pad u32),
the header padded to hdr_size, img_size bytes of body, then the TLV area: an optional protected
part (info magic 0x6908, total size = protect_tlv_size) and the unprotected part (info magic
0x6907), each TLV info being u16 magic + u16 total size (info included), each TLV u16 type +
u16 length + value. The SHA-256 TLV (0x10) is the hash of header, body and protected TLVs; the
ECDSA signature TLV (0x22, DER) signs that hash; the key hash TLV (0x01) is the SHA-256 of the
public key (DER SubjectPublicKeyInfo) and tells the bootloader which of its keys to use.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
HEADER = struct.Struct("<IIHHII BBHI I")
TLV_INFO = struct.Struct("<HH")
TLV = struct.Struct("<HH")

TLV_KEYHASH = 0x01
TLV_PUBKEY = 0x02
TLV_SHA256 = 0x10
TLV_ECDSA_SIG = 0x22

IMAGE_F_NON_BOOTABLE = 0x10

# a marker in the body: the application on the MCU confirms itself when it boots, as a
# Zephyr application calling boot_write_img_confirmed() after its self-test
SELF_CONFIRM = b"mcusim:self-confirm"
# a marker in the body: the application crashes as it starts (a fault, the MCU resets at once),
# before it could confirm itself
CRASH = b"mcusim:crash"
# a marker in the body: the application hangs as it starts (answers nothing, confirms nothing)
# until the MCU's watchdog resets it
HANG = b"mcusim:hang"

# image-management group (1) error codes (Zephyr's enum img_mgmt_err_code_t)
IMG_ERR_UNKNOWN = 1
IMG_ERR_NO_IMAGE = 3
IMG_ERR_NO_TLVS = 4
IMG_ERR_INVALID_TLV = 5
IMG_ERR_TLV_MULTIPLE_HASHES_FOUND = 6
IMG_ERR_HASH_NOT_FOUND = 8
IMG_ERR_NO_FREE_SLOT = 9
IMG_ERR_INVALID_SLOT = 14
IMG_ERR_INVALID_OFFSET = 20
IMG_ERR_INVALID_LENGTH = 21
IMG_ERR_INVALID_IMAGE_HEADER = 22
IMG_ERR_INVALID_IMAGE_HEADER_MAGIC = 23
IMG_ERR_INVALID_HASH = 24
IMG_ERR_CURRENT_VERSION_IS_NEWER = 27
IMG_ERR_IMAGE_ALREADY_PENDING = 28
IMG_ERR_INVALID_IMAGE_TOO_LARGE = 30
IMG_ERR_INVALID_IMAGE_DATA_OVERRUN = 31
IMG_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED = 33


class Refused(Exception):
    """An image the MCU will not take: `rc` is the image-management error code."""

    def __init__(self, rc: int, reason: str):
        super().__init__(reason)
        self.rc = rc
        self.reason = reason


@dataclass
class ImageInfo:
    version: tuple[int, int, int, int]
    flags: int
    hdr_size: int
    img_size: int
    protect_tlv_size: int
    total: int  # header + body + TLVs: the bytes the image occupies in its slot
    hash: bytes
    body: bytes

    @property
    def version_str(self) -> str:
        """As Zephyr's img_mgmt prints it: "major.minor.revision", ".build" if not 0."""
        major, minor, rev, build = self.version
        return f"{major}.{minor}.{rev}" + (f".{build}" if build else "")

    @property
    def bootable(self) -> bool:
        return not self.flags & IMAGE_F_NON_BOOTABLE

    @property
    def self_confirms(self) -> bool:
        return SELF_CONFIRM in self.body

    @property
    def crashes(self) -> bool:
        return CRASH in self.body

    @property
    def hangs(self) -> bool:
        return HANG in self.body


def read_header(data: bytes) -> tuple[int, ...]:
    """The header fields; Refused if there is no valid one."""
    if len(data) < HEADER.size:
        raise Refused(IMG_ERR_INVALID_IMAGE_HEADER, "shorter than an image header")
    fields = HEADER.unpack_from(data)
    if fields[0] != IMAGE_MAGIC:
        raise Refused(IMG_ERR_INVALID_IMAGE_HEADER_MAGIC, "bad image magic 0x%08x" % fields[0])
    if fields[2] < HEADER.size:
        raise Refused(IMG_ERR_INVALID_IMAGE_HEADER, "header size %d" % fields[2])
    return fields


def _tlvs(data: bytes, start: int, magic: int) -> tuple[list[tuple[int, bytes]], int]:
    if start + TLV_INFO.size > len(data):
        raise Refused(IMG_ERR_NO_TLVS, "no TLV area")
    info_magic, total = TLV_INFO.unpack_from(data, start)
    if info_magic != magic:
        raise Refused(IMG_ERR_NO_TLVS, "TLV info magic 0x%04x, expected 0x%04x" % (info_magic, magic))
    end = start + total
    if total < TLV_INFO.size or end > len(data):
        raise Refused(IMG_ERR_INVALID_TLV, "TLV area runs past the image")
    out = []
    pos = start + TLV_INFO.size
    while pos < end:
        if pos + TLV.size > end:
            raise Refused(IMG_ERR_INVALID_TLV, "truncated TLV")
        kind, length = TLV.unpack_from(data, pos)
        pos += TLV.size
        if pos + length > end:
            raise Refused(IMG_ERR_INVALID_TLV, "TLV 0x%02x runs past its area" % kind)
        out.append((kind, data[pos:pos + length]))
        pos += length
    return out, end


def parse(data: bytes) -> tuple[ImageInfo, list[tuple[int, bytes]]]:
    """Header and TLVs of the image at the start of `data` (a slot or an upload), with the
    hash checked; Refused on any defect."""
    (_, _, hdr_size, protect_size, img_size, flags, major, minor, rev, build,
     _) = read_header(data)
    body_end = hdr_size + img_size
    if body_end > len(data):
        raise Refused(IMG_ERR_INVALID_LENGTH, "image body runs past the data")
    tlvs: list[tuple[int, bytes]] = []
    pos = body_end
    if protect_size:
        prot, pos = _tlvs(data, pos, TLV_PROT_INFO_MAGIC)
        if pos - body_end != protect_size:
            raise Refused(IMG_ERR_INVALID_TLV, "protected TLV size mismatch")
        tlvs += prot
    plain, end = _tlvs(data, pos, TLV_INFO_MAGIC)
    tlvs += plain
    hashes_found = [v for k, v in tlvs if k == TLV_SHA256]
    if not hashes_found:
        raise Refused(IMG_ERR_HASH_NOT_FOUND, "no SHA-256 TLV")
    if len(hashes_found) > 1:
        raise Refused(IMG_ERR_TLV_MULTIPLE_HASHES_FOUND, "more than one SHA-256 TLV")
    digest = hashlib.sha256(data[:body_end + protect_size]).digest()
    if hashes_found[0] != digest:
        raise Refused(IMG_ERR_INVALID_HASH, "SHA-256 TLV does not match the image")
    info = ImageInfo((major, minor, rev, build), flags, hdr_size, img_size, protect_size, end,
                     digest, bytes(data[hdr_size:body_end]))
    return info, tlvs


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    """The public key from a PEM file: a public key, or a private key as imgtool keygen
    writes it."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        key = serialization.load_pem_private_key(pem, password=None).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("the secondary MCU takes ECDSA P-256 keys")
    return key


def public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def validate(data: bytes, slot_size: int, trailer_size: int,
             key: ec.EllipticCurvePublicKey | None) -> ImageInfo:
    """What MCUboot checks before it boots an image (boot_validate_slot / bootutil_img_validate):
    header, hash, size against the slot (its last `trailer_size` bytes are the image trailer),
    and, when the MCU holds a key, that the key hash names it and the signature verifies."""
    info, tlvs = parse(data)
    if info.total > slot_size - trailer_size:
        raise Refused(IMG_ERR_INVALID_IMAGE_TOO_LARGE,
                      "image of %d bytes does not fit the slot (%d bytes, trailer %d)"
                      % (info.total, slot_size, trailer_size))
    if key is None:
        return info
    der = public_der(key)
    names = [v for k, v in tlvs if k == TLV_KEYHASH] + [
        hashlib.sha256(v).digest() for k, v in tlvs if k == TLV_PUBKEY]
    if hashlib.sha256(der).digest() not in names:
        raise Refused(IMG_ERR_INVALID_TLV, "image not signed with the MCU's key (key hash)")
    sigs = [v for k, v in tlvs if k == TLV_ECDSA_SIG]
    if not sigs:
        raise Refused(IMG_ERR_INVALID_TLV, "no ECDSA signature TLV")
    try:
        key.verify(sigs[0], info.hash, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise Refused(IMG_ERR_INVALID_TLV, "bad ECDSA signature") from None
    return info


def make_image(body: bytes, version: tuple[int, int, int, int] = (0, 0, 0, 0), *,
               hdr_size: int = 0x200, flags: int = 0,
               key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """A small MCUboot image: header padded to hdr_size, body, SHA-256 TLV, and with a key
    the key hash and ECDSA P-256 signature TLVs (as `imgtool sign` lays them out)."""
    major, minor, rev, build = version
    header = HEADER.pack(IMAGE_MAGIC, 0, hdr_size, 0, len(body), flags, major, minor, rev, build, 0)
    signed = header + b"\x00" * (hdr_size - len(header)) + body
    digest = hashlib.sha256(signed).digest()
    tlvs = [(TLV_SHA256, digest)]
    if key is not None:
        tlvs.append((TLV_KEYHASH, hashlib.sha256(public_der(key.public_key())).digest()))
        tlvs.append((TLV_ECDSA_SIG, key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))))
    area = b"".join(TLV.pack(k, len(v)) + v for k, v in tlvs)
    return signed + TLV_INFO.pack(TLV_INFO_MAGIC, TLV_INFO.size + len(area)) + area
