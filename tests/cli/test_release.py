"""`fota build`: release manifests from good images, one-line refusals of bad ones."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fotatools import cli
from fotatools.release import (ImageError, inspect_image, load_release, verify_signature)
from tests.cli.images import app_image, full_image, raw_app_image


def test_build_writes_manifest_next_to_copy(tmp_path, capsys):
    data = app_image("1.4.0", size=200_000)
    src = tmp_path / "micropython.bin"
    src.write_bytes(data)
    out = tmp_path / "rel"
    assert cli.main(["build", str(src), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    manifest = json.loads((out / "micropython-1.4.0.json").read_text())
    assert printed["manifest"] == str(out / "micropython-1.4.0.json")
    image = out / manifest["file"]
    assert image.read_bytes() == data
    assert manifest["version"] == "1.4.0"
    assert manifest["project"] == "micropython"
    assert manifest["size"] == len(data)
    assert manifest["md5"] == hashlib.md5(data).hexdigest()
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["chip"] == "esp32"
    assert manifest["idf_ver"].startswith("v")
    assert manifest["secure_version"] == 0
    assert manifest["built_at"].endswith("Z")
    assert "signature" not in manifest
    # the manifest reopens as a release, checked against the image
    assert load_release(out / "micropython-1.4.0.json").manifest["md5"] == manifest["md5"]


def test_build_agrees_with_esptool_image_info(tmp_path):
    data = raw_app_image("2.0.1-rc1", "fleetfw", size=50_000)
    (tmp_path / "a.bin").write_bytes(data)
    info = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "image-info",
                           str(tmp_path / "a.bin")], capture_output=True, text=True, check=True)
    assert "App version: 2.0.1-rc1" in info.stdout
    assert "Checksum:" in info.stdout and "(valid)" in info.stdout
    app = inspect_image(data)
    assert (app.version, app.project, app.size) == ("2.0.1-rc1", "fleetfw", len(data))


def test_version_override_keeps_descriptor_version(tmp_path, capsys):
    (tmp_path / "a.bin").write_bytes(app_image("1.0.0"))
    assert cli.main(["build", str(tmp_path / "a.bin"), "--version", "1.0.0+hotfix",
                     "--out", str(tmp_path / "o"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["version"], m["app_version"]) == ("1.0.0+hotfix", "1.0.0")
    assert (tmp_path / "o" / "micropython-1.0.0+hotfix.bin").exists()


def test_signed_release_verifies(tmp_path, capsys):
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    data = app_image("3.0.0")
    (tmp_path / "a.bin").write_bytes(data)
    assert cli.main(["build", str(tmp_path / "a.bin"), "--sign", str(tmp_path / "k.pem"),
                     "--out", str(tmp_path / "o"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert m["signature"]["algorithm"] == "ecdsa-p256-sha256"
    assert verify_signature(data, m["signature"], pub)
    assert not verify_signature(data[:-1] + bytes([data[-1] ^ 1]), m["signature"], pub)


def _resum(img: bytearray) -> bytes:
    """Recompute the appended SHA-256 after editing the image body."""
    img[-32:] = hashlib.sha256(bytes(img[:-32])).digest()
    return bytes(img)


def _flip(data: bytes, pos: int) -> bytearray:
    b = bytearray(data)
    b[pos] ^= 0x5A
    return b


GOOD = raw_app_image("1.0.0", size=8192)
BAD_IMAGES = {
    "empty": (b"", "empty file"),
    "short": (GOOD[:100], "too short"),
    "truncated": (GOOD[: len(GOOD) // 2], "truncated or malformed"),
    "truncated-hash": (GOOD[:-10], "appended SHA-256 is incomplete"),
    "wrong-magic": (_resum(_flip(GOOD, 0)), "not an ESP32 image"),
    "bad-checksum": (_resum(_flip(GOOD, len(GOOD) - 33)), "bad checksum"),
    "bad-data": (bytes(_flip(GOOD, 1000)), "bad checksum"),
    "bad-hash": (bytes(_flip(GOOD, len(GOOD) - 1)), "bad SHA-256"),
    "not-an-app": (raw_app_image(with_desc=False), "not an app image"),
    "other-chip": (raw_app_image(chip_id=9), "esp32s3, not esp32"),
    "no-hash": (raw_app_image(hash_appended=False), "no appended SHA-256"),
    "full-image": (full_image(GOOD), "full flash image"),
    "trailing-bytes": (GOOD + b"\xff" * 16, "unexpected bytes after"),
    "no-segments": (_resum(bytearray(GOOD[:1] + b"\x00" + GOOD[2:])), "no segments"),
    "too-many-segments": (GOOD[:1] + b"\x11" + GOOD[2:], "truncated or malformed"),
    "bad-hash-flag": (GOOD[:23] + b"\x02" + GOOD[24:], "truncated or malformed"),
    "segment-overflow": (GOOD[:28] + struct.pack("<I", 0x7FFFFFF) + GOOD[32:],
                         "truncated or malformed"),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_build_refuses_bad_image(name, tmp_path, capsys):
    data, reason = BAD_IMAGES[name]
    with pytest.raises(ImageError, match=reason):
        inspect_image(data)
    (tmp_path / "fw.bin").write_bytes(data)
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fota: error: ") and reason in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_publish_refuses_manifest_whose_image_changed(tmp_path):
    (tmp_path / "a.bin").write_bytes(app_image("1.0.0"))
    assert cli.main(["build", str(tmp_path / "a.bin"), "--out", str(tmp_path / "o")]) == 0
    (tmp_path / "o" / "micropython-1.0.0.bin").write_bytes(app_image("1.0.1"))
    with pytest.raises(ImageError, match="does not match its manifest"):
        load_release(tmp_path / "o" / "micropython-1.0.0.json")


def test_signer_key_for_the_device():
    """provision --signer: the device gets the P-256 public key as DER SubjectPublicKeyInfo,
    from a public or a private PEM; other keys are refused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from fotatools.provisioning import signer_der

    k = ec.generate_private_key(ec.SECP256R1())
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
    der = signer_der(priv)
    assert der == signer_der(pub) and len(der) == 91 and der[-65] == 4
    for bad, why in [(b"junk", "not a PEM key"),
                     (rsa.generate_private_key(65537, 2048).private_bytes(
                         serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                         serialization.NoEncryption()), "P-256"),
                     (ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
                         serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
                      "P-256")]:
        with pytest.raises(ValueError, match=why):
            signer_der(bad)


# ---------------------------------------------------------------- the board's OTA slots
SLOT = 0x180000  # ota_0 and ota_1 of firmware/FOTA_ESP32/partitions.csv


def image_of(size: int) -> bytes:
    """A valid app image of exactly `size` bytes (a multiple of 16: the image's checksum pads
    to 16 bytes, then its 32-byte SHA-256)."""
    for ask in range(size, size - 64, -1):
        data = raw_app_image("3.0.0", size=ask)
        if len(data) == size:
            return data
    raise AssertionError(f"no image of {size} bytes")


def test_build_accepts_an_image_that_fills_the_slot_exactly(tmp_path, capsys):
    (tmp_path / "fw.bin").write_bytes(image_of(SLOT))
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "micropython-3.0.0.bin").stat().st_size == SLOT


@pytest.mark.parametrize("extra", [1, 16])  # one byte more; the next size a valid image has
def test_build_refuses_an_image_larger_than_the_slot(tmp_path, capsys, extra):
    data = image_of(SLOT)
    data = data + b"\xff" if extra == 1 else image_of(SLOT + extra)
    (tmp_path / "fw.bin").write_bytes(data)
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (f"fota: error: the image is {SLOT + extra:,} bytes, larger than the "
                   f"{SLOT:,}-byte OTA slots (ota_0, ota_1) of "
                   "firmware/FOTA_ESP32/partitions.csv\n")
    assert not (tmp_path / "o").exists()


TABLE_2MB = """\
# Name,   Type, SubType, Offset,  Size
nvs,      data, nvs,     ,        0x4000
otadata,  data, ota,     ,        0x2000
phy_init, data, phy,     ,        0x1000
ota_0,    app,  ota_0,   ,        960K
ota_1,    app,  ota_1,   ,        960K
"""


def test_build_checks_the_table_given_with_partitions(tmp_path, capsys):
    table = tmp_path / "partitions-2MiB-ota.csv"
    table.write_text(TABLE_2MB)
    (tmp_path / "fw.bin").write_bytes(image_of(960 * 1024))
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o"),
                     "--partitions", str(table)]) == 0
    (tmp_path / "fw.bin").write_bytes(image_of(960 * 1024 + 16))
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o2"),
                     "--partitions", str(table)]) == 2
    err = capsys.readouterr().err
    assert f"the image is {960 * 1024 + 16:,} bytes, larger than the {960 * 1024:,}-byte" in err
    assert str(table) in err


def test_build_refuses_a_table_without_ota_slots(tmp_path, capsys):
    table = tmp_path / "partitions-4MiBplus.csv"  # stock MicroPython's ESP32_GENERIC
    table.write_text("nvs, data, nvs, 0x9000, 0x6000,\nphy_init, data, phy, 0xf000, 0x1000,\n"
                     "factory, app, factory, 0x10000, 0x1F0000,\n")
    (tmp_path / "fw.bin").write_bytes(raw_app_image("3.0.0", size=20_000))
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o"),
                     "--partitions", str(table)]) == 2
    assert "has no OTA app slots (ota_0, ota_1)" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ("ota_0, app, ota_0, 0x10001, 1M\n", "is not aligned to 0x10000"),
    ("ota_0, app, ota_0, , 1Q\n", "bad size '1Q'"),
    ("nvs, data, nvs, 0x9000, 0x6000\nphy, data, phy, 0xa000, 0x1000\n",
     "overlaps the partition before it"),
    ("", "no partitions"),
])
def test_bad_partition_table_is_refused(tmp_path, capsys, text, message):
    table = tmp_path / "p.csv"
    table.write_text(text)
    (tmp_path / "fw.bin").write_bytes(raw_app_image("3.0.0", size=20_000))
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o"),
                     "--partitions", str(table)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fota: error: ") and message in err and err.count("\n") == 1


def test_project_table_reads_as_the_emulated_board_has_it():
    # the CSV parser against the binary table the emulator writes for FOTA_ESP32
    from emulator import flashfmt as ff
    from emulator.flash import default_partitions
    from fotatools import partitions

    root = Path(__file__).resolve().parents[2]
    csv = partitions.load(root / "firmware" / "FOTA_ESP32" / "partitions.csv")
    binary = partitions.parse_binary(ff.pack_partition_table(default_partitions(romfs=True)))
    assert csv == binary == partitions.parse_csv(partitions.FOTA_ESP32)  # the built-in copy
    assert [p.name for p in partitions.ota_slots(csv)] == ["ota_0", "ota_1"]
    fs = partitions.filesystem(csv, 4 << 20)
    assert (fs.name, fs.offset, fs.size) == ("vfs", 0x350000, 0xB0000)


def test_build_without_the_project_folder_uses_the_built_in_table(tmp_path, capsys, monkeypatch):
    from fotatools import flashing

    monkeypatch.setattr(flashing, "find_project", lambda start=None: None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fw.bin").write_bytes(image_of(SLOT + 16))
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--out", str(tmp_path / "o")]) == 2
    assert f"larger than the {SLOT:,}-byte OTA slots" in capsys.readouterr().err
