"""The whole job cycle's heap budget (docs/figures.md) on the emulated ESP32-S3 and ESP32-C3:
the same library and the same code paths as on the ESP32, with the S3's 8 MB table and the
C3's bootloader at 0x0."""

import pytest

from tests.device.rig import ONCE, firmware
from tests.device.test_heap import readme_budget_kb


@pytest.mark.parametrize("chip,flash_mb", [("esp32s3", 8), ("esp32c3", 4)])
def test_whole_cycle_fits_the_budget_on_each_chip(rig, chip, flash_mb):
    from tests.device import romlib

    r = rig(chip=chip, flash_mb=flash_mb)
    app = ONCE + "print('app: library', fota.__file__)\n"
    image_kb = -(-romlib.install(r.fs, app) // 1024) + 1  # the image's bytes: a board has them in flash
    job = r.publish(firmware("1.0.1", size=1_500_000, chip=chip))
    result = r.run(heapsize=f"{readme_budget_kb() + image_kb}k")
    assert result.exit_reason == "main-returned", result.console
    assert "app: library /rom/fota/__init__.mpy" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"
