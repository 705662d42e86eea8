"""Byte layouts checked against independent parsers: esptool, esp-idf-defs (a port of
ESP-IDF's gen_esp32part.py and image/otadata structures), ESP-IDF's own numbers, and the
same code running under MicroPython."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys

import pytest
from esp_idf_defs import AppDescription, ImageMetadata, OtaDataSelectEntry, PartitionTable
from esptool.bin_image import LoadFirmwareImage

from tests.emulator.emuhelpers import run_micropython
from emulator import flashfmt as ff
from emulator.flash import Flash, create_flash
from emulator.image import build_app_image, read_app_desc, read_payload, verify

# MicroPython's ports/esp32/partitions-4MiB-ota.csv (v1.26 and later: no vfs row)
MICROPYTHON_OTA_CSV = """\
# Name,   Type, SubType, Offset,   Size,     Flags
nvs,      data, nvs,     0x9000,   0x4000,
otadata,  data, ota,     0xd000,   0x2000,
phy_init, data, phy,     0xf000,   0x1000,
ota_0,    app,  ota_0,   0x10000,  0x180000,
ota_1,    app,  ota_1,   0x190000, 0x180000,
"""


@pytest.fixture(scope="module")
def big_image() -> bytes:
    return build_app_image("v1.2.3", project="fota-test",
                           payload={"_boot.py": "print('hi')\n", "pkg/mod.py": "X = 1\n"},
                           size=1_500_000, secure_version=3)


def test_partition_table_is_what_gen_esp32part_makes(tmp_path, big_image):
    flash = create_flash(tmp_path / "f.bin", big_image)
    ours = flash.read_bytes()[0x8000:0x8000 + 0xC00]
    reference = PartitionTable.from_csv(MICROPYTHON_OTA_CSV)
    reference.verify()
    assert ours == reference.to_binary()
    parsed = PartitionTable.from_binary(ours)  # checks the MD5 entry
    assert [(p.name, p.offset, p.size) for p in parsed] == [
        ("nvs", 0x9000, 0x4000), ("otadata", 0xD000, 0x2000), ("phy_init", 0xF000, 0x1000),
        ("ota_0", 0x10000, 0x180000), ("ota_1", 0x190000, 0x180000)]


def test_runtime_vfs_and_table_vfs(tmp_path, big_image):
    runtime = Flash(create_flash(tmp_path / "a.bin", big_image))
    vfs = runtime.partition("vfs")
    assert (vfs.type, vfs.subtype, vfs.offset, vfs.size) == (1, 0x81, 0x310000, 0xF0000)
    assert "vfs" not in [p.label for p in runtime.partitions(runtime=False)]
    lfs = Flash(create_flash(tmp_path / "b.bin", big_image, vfs_subtype=ff.SUBTYPE_DATA_LITTLEFS))
    table = PartitionTable.from_binary(lfs.read(0x8000, 0xC00))
    assert table.find_by_name("vfs").subtype == 0x83


@pytest.mark.parametrize("damage", ["entry", "md5", "magic", "erased"])
def test_bad_partition_table_is_refused(damage):
    table = bytearray(ff.pack_partition_table([
        ff.PartitionEntry("ota_0", 0, 0x10, 0x10000, 0x100000)]))
    if damage == "entry":
        table[10] ^= 1  # the offset field: the MD5 no longer matches
    elif damage == "md5":
        table[32 + 20] ^= 1
    elif damage == "magic":
        table[0] = 0x12
    else:
        table[:] = b"\xff" * len(table)
    with pytest.raises(ValueError):
        ff.parse_partition_table(bytes(table))


@pytest.mark.parametrize("entries", [
    [ff.PartitionEntry("a", 0, 0x10, 0x10800, 0x1000)],  # app not 64 KB aligned
    [ff.PartitionEntry("a", 1, 2, 0x9000, 0x4000), ff.PartitionEntry("b", 1, 2, 0xA000, 0x1000)],
    [ff.PartitionEntry("a", 1, 2, 0x9000, 0x4000), ff.PartitionEntry("a", 1, 2, 0xE000, 0x1000)],
    [ff.PartitionEntry("x" * 17, 1, 2, 0x9000, 0x1000)],
])
def test_bad_partition_rows_are_refused(entries):
    with pytest.raises(ValueError):
        ff.pack_partition_table(entries)


def test_otadata_crc_matches_esp_idf():
    # ESP-IDF: bootloader_common_ota_select_crc = esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4);
    # otatool.py computes it as binascii.crc32(struct.pack('I', seq), 0xFFFFFFFF). The entry
    # {seq 1} is 01 00 00 00 ... 9a 98 43 47 on a board.
    assert ff.ota_seq_crc(1) == 0x4743989A
    entry = ff.OtaEntry(7, ff.OTA_IMG_NEW)
    assert entry.pack() == OtaDataSelectEntry(7, 0).to_bytes()
    for seq in (1, 2, 3, 1000, 0xFFFFFFFE):
        assert OtaDataSelectEntry.from_bytes(ff.OtaEntry(seq, 2).pack()).seq == seq


def test_micropython_computes_the_same_bytes(tmp_path, big_image):
    """flashfmt runs under MicroPython: CRCs and an image verification agree with CPython."""
    (tmp_path / "img.bin").write_bytes(big_image)
    out = run_micropython(
        "import flashfmt as ff\n"
        "print([ff.ota_seq_crc(s) for s in (1, 2, 3, 77)])\n"
        "f = open('img.bin', 'rb')\n"
        "def rd(o, n):\n    f.seek(o)\n    return f.read(n)\n"
        "info = ff.verify_image(rd, 0x180000)\n"
        "print(info['image_len'], info['sha256'], info['app_desc']['version'])\n"
        "e = ff.OtaEntry(5, ff.OTA_IMG_PENDING_VERIFY)\n"
        "print(ff.OtaEntry.unpack(e.pack()).valid(), e.pack().hex())\n", tmp_path)
    lines = out.splitlines()
    assert lines[0] == str([ff.ota_seq_crc(s) for s in (1, 2, 3, 77)])
    info = verify(big_image)
    assert lines[1] == f"{info['image_len']} {info['sha256']} v1.2.3"
    assert lines[2] == f"True {ff.OtaEntry(5, ff.OTA_IMG_PENDING_VERIFY).pack().hex()}"


def test_esptool_image_info_accepts_the_image(tmp_path, big_image):
    path = tmp_path / "app.bin"
    path.write_bytes(big_image)
    proc = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Detected image type: ESP32" in out
    assert "Checksum: " in out and "(valid)" in out.split("Checksum: ")[1].splitlines()[0]
    assert "Validation hash: " in out
    assert out.split("Validation hash: ")[1].splitlines()[0].endswith("(valid)")
    assert "App version: v1.2.3" in out
    assert "Project name: fota-test" in out
    assert "Secure version: 3" in out


def test_esptool_python_api_reads_the_image(big_image):
    image = LoadFirmwareImage("esp32", big_image)
    assert image.checksum == image.calculate_checksum()
    assert image.append_digest and image.stored_digest == image.calc_digest
    assert image.chip_id == 0
    assert len(image.segments) == 5
    kinds = [seg.get_memory_type(image) for seg in image.segments]
    assert "DROM" in kinds[0] and "IROM" in kinds[-1]
    # the app descriptor sits at the start of the first (DROM) segment
    assert struct.unpack_from("<I", image.segments[0].data)[0] == 0xABCD5432


def test_esp_idf_defs_reads_the_image(big_image):
    meta = ImageMetadata.from_bytes(big_image, app_required=True)
    assert meta.digest == big_image[-32:] == hashlib.sha256(big_image[:-32]).digest()
    desc: AppDescription = meta.app_description
    assert (desc.project_name, desc.version, desc.secure_version) == ("fota-test", "v1.2.3", 3)
    assert desc.idf_version.startswith("v5.")


def test_size_and_payload_round_trip(big_image):
    assert 1_500_000 <= len(big_image) <= 1_500_016
    assert len(big_image) <= 0x180000
    assert read_payload(big_image) == {"_boot.py": "print('hi')\n", "pkg/mod.py": "X = 1\n"}
    desc = read_app_desc(big_image)
    assert desc["version"] == "v1.2.3" and desc["secure_version"] == 3
    assert build_app_image("v1.2.3", project="fota-test", payload=read_payload(big_image),
                           size=1_500_000, secure_version=3) == big_image  # deterministic
    small = build_app_image("v9")
    assert read_payload(small) == {} and len(small) < 4096


@pytest.mark.parametrize("bad", [
    {"size": 100},
    {"payload": {"../x.py": ""}},
    {"payload": {"/abs.py": ""}},
    {"version": "v" * 40},
])
def test_bad_build_arguments(bad):
    kwargs = {"version": "v1"} | bad
    with pytest.raises(ValueError):
        build_app_image(**kwargs)


def _corrupt(image: bytes, how: str) -> tuple[bytes, int]:
    """A damaged copy of an image, and the partition size to verify it in."""
    b = bytearray(image)
    part = 0x180000
    if how == "magic":
        b[0] = 0xE8
    elif how == "chip":
        b[12] = 9  # an ESP32-S3 image
    elif how == "min_rev":
        struct.pack_into("<H", b, 15, 305)  # needs chip v3.5
    elif how == "segments":
        b[1] = 17
    elif how == "checksum":
        b[len(b) - 33] ^= 0x01
    elif how == "hash":
        b[-1] ^= 0x80
    elif how == "payload_byte":
        b[600] ^= 0x40  # inside a segment: the checksum or the hash catches it
    elif how == "seg_len":
        addr, length = struct.unpack_from("<II", b, 24)
        struct.pack_into("<II", b, 24, addr, length + 2)
    elif how == "mmu_align":
        addr, length = struct.unpack_from("<II", b, 24)
        struct.pack_into("<II", b, 24, addr + 4, length)
    elif how == "too_big":
        part = len(image) - 16
    elif how == "truncated":
        b = b[:len(b) // 2] + b"\xff" * (len(b) - len(b) // 2)
    elif how == "erased":
        b = bytearray(b"\xff" * len(b))
    return bytes(b), part


@pytest.mark.parametrize("how", ["magic", "chip", "min_rev", "segments", "checksum", "hash",
                                 "payload_byte", "seg_len", "mmu_align", "too_big",
                                 "truncated", "erased"])
def test_verify_rejects_damaged_images(big_image, how):
    image, part = _corrupt(big_image, how)
    with pytest.raises(ff.ImageError):
        verify(image, part)


def test_verify_accepts_the_intact_image(big_image):
    info = verify(big_image, 0x180000)
    assert info["image_len"] == len(big_image)
    assert info["app_desc"]["version"] == "v1.2.3"


def test_bootloader_only_checks_load_addresses(big_image):
    """verify_load_addresses runs in the bootloader only: an IRAM segment moved to a bad
    address passes esp_image_verify in the app but not the bootloader."""
    b = bytearray(big_image)
    pos = 24
    for _ in range(3):  # to segment 3 (IRAM)
        _, length = struct.unpack_from("<II", b, pos)
        pos += 8 + length
    addr, length = struct.unpack_from("<II", b, pos)
    assert addr == 0x40080000
    struct.pack_into("<I", b, pos, 0x60000000)
    # redo checksum-free parts: the header is hashed, so recompute the SHA-256
    body = bytes(b[:-32])
    b[-32:] = hashlib.sha256(body).digest()
    verify(bytes(b))
    with pytest.raises(ff.ImageError, match="bad load address"):
        verify(bytes(b), bootloader=True)
