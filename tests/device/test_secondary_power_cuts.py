"""A power cut of the ESP32 at any flash operation of a job with a secondary MCU image and a file:
after the next boots the job has SUCCEEDED, the secondary runs the new image confirmed (its upload
resumed where the MCU was, its trial read back, never tested twice), the file is the new one, and
no staged file or record is left. The MCU is not cut: it keeps running, as a separate chip.

The sweep counts the operations of a clean job, then cuts once at each of them (a seeded sample
here, every one under `make reliability`)."""

import random

import pytest

from tests.device.test_file_targets import file_version, multi_job
from tests.device.test_secondary_jobs import APP, board, mcu, mcu_image, running  # noqa: F401
from tests.reliability.plugin import full

DATA = b"bitstream" * 2000
IMAGE = mcu_image(size=40_000)
SAMPLE = 10


def ops(result):
    return result.erases + result.writes


def job_for(r):
    r.put_file("data/fpga.bit", b"old")
    return multi_job(r, [(1, IMAGE, "mcu.bin"), (2, DATA, "fpga.bit")])


def check(r, mcu, job, result):
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", (ex.status_details, result.console, mcu.log())
    assert ex.status_details == {"step": "confirm", "file_1": "1.1.0", "file_2": file_version(DATA)}
    assert running(mcu) == ("1.1.0", {"magic": True, "copy_done": True, "image_ok": True})
    assert mcu.log().count("set for test") == 1, mcu.log()
    assert r.file("data/fpga.bit") == DATA and r.file("data/fpga.bit.new") is None
    assert r.file("fota.json") is None


def test_clean_job_counts_the_operations(rig, mcu):
    r = board(rig, mcu)
    job = job_for(r)
    result = r.run_mcu(max_boots=2)
    check(r, mcu, job, result)
    assert ops(result) == CLEAN_OPS, result.console


CLEAN_OPS = 203


@pytest.mark.row("power cuts at every flash operation of a job with a secondary MCU and a file")
@pytest.mark.parametrize("cut", range(1, CLEAN_OPS + 1) if full() else sorted(
    random.Random(13).sample(range(1, CLEAN_OPS + 1), SAMPLE)))
def test_power_cut(rig, mcu, cut):
    r = board(rig, mcu)
    job = job_for(r)
    result = r.run_mcu(max_boots=6, cut_at=cut, timeout=120)
    assert result.flash_stats.get("cuts") == 1, result.console
    assert result.exit_reason == "main-returned", result.console
    if r.execution(job).status == "IN_PROGRESS":  # cut after the last report: one more boot ends it
        result = r.run_mcu(max_boots=2)
    check(r, mcu, job, result)


# The same with this ESP32's firmware in the job too: the files first, then its download, the
# trial boot and the confirmation; a cut anywhere, the transition between the two included. The
# job SUCCEEDED exactly when 1.0.1 runs; the files are done either way.
FIRMWARE = None


def firmware_job(r):
    global FIRMWARE
    from tests.device.rig import firmware

    FIRMWARE = FIRMWARE or firmware("1.0.1", size=24_000)
    r.put_file("data/fpga.bit", b"old")
    return multi_job(r, [(0, FIRMWARE, "fw.bin"), (1, IMAGE, "mcu.bin"), (2, DATA, "fpga.bit")])


def check_with_firmware(r, mcu, job, result):
    # A cut during the ESP32's trial boot rolls it back (the bootloader takes a reset on the
    # trial as a failure): the job then ends FAILED for file 0, after the files were done.
    ex = r.execution(job)
    assert (ex.status == "SUCCEEDED") == (r.version() == "1.0.1"), (ex, result.console)
    if ex.status == "SUCCEEDED":
        assert ex.status_details == {"step": "confirm", "version": "1.0.1", "from_version": "1.0.0",
                                     "file_1": "1.1.0", "file_2": file_version(DATA),
                                     "app_version": "none"}
    else:
        assert ex.status_details["reason"].startswith("file 0: rolled back"), (ex, result.console)
    assert running(mcu) == ("1.1.0", {"magic": True, "copy_done": True, "image_ok": True})
    assert mcu.log().count("set for test") == 1, mcu.log()
    assert r.file("data/fpga.bit") == DATA and r.file("data/fpga.bit.new") is None
    assert r.file("fota.json") is None


def test_clean_job_with_firmware_counts_the_operations(rig, mcu):
    r = board(rig, mcu)
    job = firmware_job(r)
    result = r.run_mcu(max_boots=4)
    check_with_firmware(r, mcu, job, result)
    assert ops(result) == CLEAN_FIRMWARE_OPS, result.console


CLEAN_FIRMWARE_OPS = 242


@pytest.mark.row("power cuts at every flash operation of a job with firmware, a secondary MCU and a file")
@pytest.mark.parametrize("cut", range(1, CLEAN_FIRMWARE_OPS + 1) if full() else sorted(
    random.Random(14).sample(range(1, CLEAN_FIRMWARE_OPS + 1), SAMPLE)))
def test_power_cut_with_firmware(rig, mcu, cut):
    r = board(rig, mcu)
    job = firmware_job(r)
    result = r.run_mcu(max_boots=8, cut_at=cut, timeout=120)
    assert result.flash_stats.get("cuts") == 1, result.console
    assert result.exit_reason == "main-returned", result.console
    if r.execution(job).status == "IN_PROGRESS":
        result = r.run_mcu(max_boots=4)
    check_with_firmware(r, mcu, job, result)
