"""The slots an app image must fit, per chip: `fota build --chip` and `fota flash --chip` check
it against the project's board of that chip (firmware/FOTA_ESP32S3/partitions.csv: 2.4 MB slots
on the ESP32-S3's 8 MB; the ESP32-C3's and the ESP32's tables: 1.5 MB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fotatools import cli, flashing, partitions
from tests.cli.images import raw_app_image
from tests.cli.test_flash import device, project  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
S3_SLOT = 0x270000  # ota_0 and ota_1 of firmware/FOTA_ESP32S3/partitions.csv
SLOT = 0x180000  # the ESP32's and the ESP32-C3's
CHIP_IDS = {"esp32": 0, "esp32s3": 9, "esp32c3": 5}


def image_of(size: int, chip: str) -> bytes:
    """A valid app image for `chip` of exactly `size` bytes (a multiple of 16)."""
    for ask in range(size, size - 64, -1):
        data = raw_app_image("3.0.0", size=ask, chip_id=CHIP_IDS[chip])
        if len(data) == size:
            return data
    raise AssertionError(f"no image of {size} bytes")


@pytest.mark.parametrize("chip, board", [("esp32", "FOTA_ESP32"), ("esp32s3", "FOTA_ESP32S3"),
                                         ("esp32c3", "FOTA_ESP32C3")])
def test_built_in_tables_are_the_boards(chip, board):
    path, table = partitions.board_table(chip)
    assert path == f"firmware/{board}/partitions.csv"
    assert partitions.load(ROOT / path) == table


def build(tmp_path, data: bytes, chip: str) -> int:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "fw.bin").write_bytes(data)
    return cli.main(["build", str(tmp_path / "fw.bin"), "--chip", chip,
                     "--out", str(tmp_path / "o")])


def test_s3_build_accepts_a_2_mb_image_and_one_that_fills_its_slot(tmp_path):
    assert build(tmp_path / "a", image_of(2_000_000 // 16 * 16, "esp32s3"), "esp32s3") == 0
    assert build(tmp_path / "b", image_of(S3_SLOT, "esp32s3"), "esp32s3") == 0
    assert (tmp_path / "b" / "o" / "micropython-3.0.0.bin").stat().st_size == S3_SLOT


def test_s3_build_refuses_an_image_over_its_slot(tmp_path, capsys):
    assert build(tmp_path, image_of(S3_SLOT + 16, "esp32s3"), "esp32s3") == 2
    assert capsys.readouterr().err == (
        f"fota: error: the image is {S3_SLOT + 16:,} bytes, larger than the {S3_SLOT:,}-byte "
        "OTA slots (ota_0, ota_1) of firmware/FOTA_ESP32S3/partitions.csv\n")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("chip", ["esp32", "esp32c3"])
def test_the_4_mb_boards_take_images_up_to_their_1_5_mb_slots(tmp_path, capsys, chip):
    assert build(tmp_path / "a", image_of(SLOT, chip), chip) == 0
    assert build(tmp_path / "b", image_of(SLOT + 16, chip), chip) == 2
    assert f"larger than the {SLOT:,}-byte OTA slots" in capsys.readouterr().err


@pytest.mark.parametrize("chip, slot", [("esp32s3", S3_SLOT), ("esp32c3", SLOT), ("esp32", SLOT)])
def test_flash_takes_an_app_image_up_to_the_chips_slot(chip, slot):
    assert flashing.firmware_kind(image_of(slot, chip), chip) == ("app", 0x10000)
    with pytest.raises(ValueError, match=f"does not fit an OTA slot of the {chip} board "
                                         f"\\({slot} bytes\\)"):
        flashing.firmware_kind(image_of(slot + 16, chip), chip)


def test_flash_dry_run_of_a_2_mb_s3_image(tmp_path, project, device, capsys):  # noqa: F811
    fw = tmp_path / "app.bin"
    fw.write_bytes(image_of(2_000_000 // 16 * 16, "esp32s3"))
    assert cli.main(["flash", "/dev/ttyACM0", "--firmware", str(fw), "--device", str(device),
                     "--project", str(project), "--chip", "esp32s3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--chip esp32s3" in out and "0x10000" in out
