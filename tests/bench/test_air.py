"""The bench's own arithmetic: app images cut out of whole-flash files, the one-line change's
rewrite (a valid image again), MQTT framing and stream message counts. No timings, no network:
images are made here by the emulator's image builder."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import air_bench  # noqa: E402
import firmware  # noqa: E402

from emulator.image import build_app_image  # noqa: E402


@pytest.fixture(scope="module")
def app() -> bytes:
    return build_app_image("1.0.0", size=100_000)


def whole_flash(app: bytes, base: int) -> bytes:
    """A whole-flash file written at `base`: bootloader, partition table, app at 0x10000."""
    out = bytearray(b"\xff" * (firmware.APP_OFFSET - base))
    out[0] = firmware.IMAGE_MAGIC
    out[firmware.PART_TABLE - base:firmware.PART_TABLE - base + 2] = b"\xaa\x50"
    return bytes(out) + app + b"\xff" * 4096


@pytest.mark.parametrize("base", [0x1000, 0x0])
def test_app_image_is_cut_out_of_a_whole_flash_file(app: bytes, base: int) -> None:
    assert firmware.app_image(whole_flash(app, base)) == app


def test_app_image_alone_loses_what_follows_it(app: bytes) -> None:
    assert firmware.app_image(app + b"\xff" * 100) == app


def test_not_an_image_is_refused() -> None:
    with pytest.raises(ValueError):
        firmware.app_image(b"\x00" * 70000)


def test_rewrite_gives_a_valid_image_that_differs_only_there(app: bytes) -> None:
    pos = 1000
    new = firmware.rewrite(app, pos, b"XYZ")
    firmware.check(new)  # checksum and SHA-256 made again
    assert len(new) == len(app)
    diff = [i for i in range(len(app)) if app[i] != new[i]]
    end = firmware.image_length(app) - 32
    assert all(i in (pos, pos + 1, pos + 2, end - 1) or i >= end for i in diff)
    assert new[pos:pos + 3] == b"XYZ"
    assert new[end:] == hashlib.sha256(new[:end]).digest()


def test_a_changed_byte_without_a_new_checksum_is_caught(app: bytes) -> None:
    bad = bytearray(app)
    bad[1000] ^= 1
    with pytest.raises(ValueError):
        firmware.check(bytes(bad))


def test_one_line_change_needs_the_line(app: bytes) -> None:
    with pytest.raises(ValueError):
        firmware.one_line_change(app)
    at = 2000
    with_line = firmware.rewrite(app, at, firmware.OLD_LINE)
    changed = firmware.one_line_change(with_line)
    assert changed[at:at + len(firmware.NEW_LINE)] == firmware.NEW_LINE
    firmware.check(changed)


def test_mqtt_publish_framing() -> None:
    # fixed header 1, remaining length 1 (under 128) or 2 bytes, topic length 2, topic, payload
    assert air_bench.mqtt_publish("a/b/c/d/ef", 100) == 1 + 1 + 2 + 10 + 100
    assert air_bench.mqtt_publish("a/b/c/d/ef", 200) == 1 + 2 + 2 + 10 + 200
    assert air_bench.mqtt_publish("t", 20000) == 1 + 3 + 2 + 1 + 20000


def test_stream_messages_blocks_and_requests() -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes: 3 blocks of 4 KB, one request
    j, c = air_bench.mqtt(data, "json"), air_bench.mqtt(data, "cbor")
    assert j["messages"] == c["messages"] == 4
    assert c["payload"] > len(data) and j["payload"] > c["payload"] * 4 / 3 - 100
    assert c["tls"] == c["mqtt"] + 4 * air_bench.TLS_OVERHEAD


def test_tls_records() -> None:
    assert air_bench.tls_bytes(16384) == 16384 + air_bench.TLS_OVERHEAD
    assert air_bench.tls_bytes(16385) == 16385 + 2 * air_bench.TLS_OVERHEAD


def test_compressed_and_patch_give_the_image_back(app: bytes) -> None:
    air_bench.deflate_pieces(app)  # checks that it inflates back
    new = firmware.rewrite(app, 3000, b"changed")
    p = air_bench.patch(app, new, "heatshrink")  # checks detools' apply
    assert len(p) < len(new) // 10


def test_flash_model_counts_only_sectors_that_differ(app: bytes) -> None:
    whole = air_bench.flash_model_s(app)
    same = air_bench.flash_model_s(app, slot=app)
    assert same < whole / 20
