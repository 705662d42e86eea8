"""Power cuts on the ESP32-S3 (8 MB: its bootloader at 0x0, MicroPython's 8MiBplus OTA table,
2.4 MB slots) and the ESP32-C3 (4 MB, its bootloader at 0x0): the sweeps of
tests/device/test_power_cuts.py (a firmware update) and test_app_cuts.py (an application
switched to on this project's firmware, and one rolled back) on each chip, each its own row of
`make reliability`. `make test` cuts at a seeded sample of the operations of each.

After every cut the board's ROM still finds the chip's bootloader where that chip has it, the
bootloader and the partition table are byte for byte what they were (an update writes neither),
the slot the bootloader picks holds an image that verifies for this chip, and the job ends,
SUCCEEDED exactly when the new firmware (or application) runs."""

from __future__ import annotations

import json
import random

import pytest

from emulator import chips, flashfmt as ff
from emulator.flash import Flash, create_flash
from tests.device.rig import firmware
from tests.reliability import test_app_cuts as apps
from tests.reliability.plugin import full

CHIPS = {"esp32s3": 8, "esp32c3": 4}  # flash MB of each board swept
NEW = {chip: firmware("1.0.1", size=24_000, chip=chip) for chip in CHIPS}
# A clean update of NEW, as on the ESP32 (test_power_cuts.CLEAN_OPS): the bootloader's otadata
# writes, 6 image sectors erased and written, set_boot, the trial boot and the confirmation,
# and the filesystem's commits of the record of the update.
CLEAN_OPS = {"esp32s3": 42, "esp32c3": 42}
SAMPLE = 3  # cuts per chip and sweep in `make test`
# What an update must never write: the bootloader (at the chip's offset) and the partition
# table (0x8000, one sector), all below the first data partition (nvs, 0x9000).
FIXED = (0x0, 0x9000)


def row(what: str, chip: str) -> str:
    return f"{what} ({chip})"


def cuts(chip: str, total: int, seed: int) -> list[int]:
    if full():
        return list(range(1, total + 1))
    return sorted(random.Random(f"{chip}-{seed}").sample(range(1, total + 1), min(SAMPLE, total)))


def fixed(r) -> bytes:
    return Flash(r.flash).read(*FIXED)


def boots_valid(r, before: bytes) -> str:
    """'' when the board would boot a valid firmware of its chip, else what is wrong."""
    f = Flash(r.flash)
    if f.read(*FIXED) != before:
        return "the bootloader or the partition table changed"
    spec = chips.get(r.chip)
    if f.chip() != spec.key:
        return f"the ROM finds no {spec.name} bootloader at {spec.bootloader:#x}"
    try:
        slot = f.boot_slot()
        p = f.partition(slot)
        ff.verify_image(lambda off, n: f.read(p.offset + off, n), p.size, chip_id=spec.chip_id,
                        chip_rev_full=spec.rev_full, memmap=chips.memmap(spec))
    except Exception as e:  # noqa: BLE001 - any failure to boot is the finding
        return f"no valid firmware boots: {e}"
    return ""


def firmware_outcome(r, job: str, result) -> str:
    """'' when the board boots, the job ended and agrees with the firmware that runs."""
    if result.exit_reason != "main-returned":
        return f"run ended {result.exit_reason}"
    ex = r.execution(job)
    if ex.status == "IN_PROGRESS":  # the cut came after the last report: one more boot ends it
        again = r.run(max_boots=4)
        if again.exit_reason != "main-returned":
            return f"the boot after ended {again.exit_reason}"
        ex = r.execution(job)
    if ex.status not in ("SUCCEEDED", "FAILED"):
        return f"job {ex.status}"
    version = r.version()
    if (ex.status == "SUCCEEDED") != (version == "1.0.1"):
        return f"job {ex.status} but the board runs {version}"
    if r.file("fota.json") is not None:
        return "fota.json left behind"
    return ""


@pytest.mark.parametrize("chip", CHIPS)
def test_clean_update_fits_the_sweep(rig, chip, tmp_path):
    r = rig(chip=chip, flash_mb=CHIPS[chip])
    before = fixed(r)
    job = r.publish(NEW[chip])
    log = tmp_path / "ops.log"
    result = r.run(env={"ESP32_OPLOG": str(log)})
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert result.erases + result.writes == CLEAN_OPS[chip], result.console
    # the sweep cuts through this chip's layout: ota_1 where its table has it, and nothing
    # written below nvs (its bootloader, its table)
    ota_1 = Flash(r.flash).partition("ota_1").offset
    assert ota_1 == (0x280000 if CHIPS[chip] == 8 else 0x190000)
    addrs = [int(line.split()[1], 16) for line in log.read_text().splitlines()]
    assert ota_1 in addrs and min(addrs) >= FIXED[1], addrs
    assert boots_valid(r, before) == ""


@pytest.mark.parametrize("chip", CHIPS)
def test_what_the_sweep_counts_as_a_board_that_does_not_boot(rig, chip):
    # boots_valid, the check after every cut, on boards hit where an update must not write
    r = rig(chip=chip, flash_mb=CHIPS[chip])
    before = fixed(r)
    assert boots_valid(r, before) == ""
    data = bytearray(r.flash.read_bytes())
    ota_0 = Flash(r.flash).partition("ota_0").offset
    for where, byte, why in [
            (0x0, 0xFF, "the bootloader or the partition table changed"),  # the S3's, the C3's
            (0x8000, 0xFF, "the bootloader or the partition table changed"),  # the table
            (ota_0 + 12, 0x00, "no valid firmware boots"),  # the image's chip id: the ESP32's
            (ota_0 + 0x100, data[ota_0 + 0x100] ^ 1, "no valid firmware boots")]:  # its SHA-256
        hit = bytearray(data)
        hit[where] = byte
        r.flash.write_bytes(bytes(hit))
        assert boots_valid(r, before).startswith(why), (hex(where), boots_valid(r, before))
    # the ROM looks for the chip's bootloader at the chip's offset, not the ESP32's 0x1000
    hit = bytearray(data)
    hit[0x1000:0x1000 + 0x20] = hit[0:0x20]
    hit[0:0x20] = b"\xff" * 0x20
    r.flash.write_bytes(bytes(hit))
    assert boots_valid(r, fixed(r)).startswith(f"the ROM finds no {chips.get(chip).name}")


def firmware_sweep(chip: str) -> list:
    return [pytest.param(chip, cut, id=f"{chip}-{cut}") for cut in cuts(chip, CLEAN_OPS[chip], 42)]


@pytest.mark.row(row("power cuts at every flash operation of an update", "esp32s3"))
@pytest.mark.parametrize("chip, cut", firmware_sweep("esp32s3"))
def test_power_cut_during_an_update_on_the_s3(rig, chip, cut):
    power_cut_during_an_update(rig, chip, cut)


@pytest.mark.row(row("power cuts at every flash operation of an update", "esp32c3"))
@pytest.mark.parametrize("chip, cut", firmware_sweep("esp32c3"))
def test_power_cut_during_an_update_on_the_c3(rig, chip, cut):
    power_cut_during_an_update(rig, chip, cut)


def power_cut_during_an_update(rig, chip: str, cut: int) -> None:
    r = rig(chip=chip, flash_mb=CHIPS[chip])
    before = fixed(r)
    job = r.publish(NEW[chip])
    result = r.run(max_boots=8, cut_at=cut, timeout=120)
    assert result.flash_stats.get("cuts") == 1, result.console  # every cut is inside the update
    assert boots_valid(r, before) == "", result.console
    assert firmware_outcome(r, job, result) == "", result.console
    assert boots_valid(r, before) == "", result.console


# --- applications: on this project's firmware (the ROMFS route), a switch and a rollback ---

APP_ROW = "power cuts at every flash operation of an application switch and rollback"


def app_board(boards, chip: str):
    r = boards(chip=chip, flash_mb=CHIPS[chip])
    (r.fs / "main.py").write_text(apps.ONCE_APP)
    (r.fs / "apps.json").write_text(json.dumps(apps.CONFIRMED))
    create_flash(r.flash, firmware("1.0.0", chip=chip), CHIPS[chip] << 20, romfs=True,
                 romfs_slots={0: apps.OLD_IMAGE}, chip=chip)
    return r


def app_sweep(boards, tries, chip: str, image: bytes, want: str) -> None:
    name = row(APP_ROW, chip)
    r = app_board(boards, chip)
    job = r.publish(image, target="app")
    clean = r.run(max_boots=5)
    assert r.execution(job).status == want, clean.console[-3000:]
    total = clean.erases + clean.writes
    for cut in cuts(chip, total, total):
        r = app_board(boards, chip)
        before = fixed(r)
        job = r.publish(image, target="app")
        result = r.run(max_boots=8, cut_at=cut)
        if result.flash_stats.get("cuts") != 1:
            why = "the cut was not reached"
        else:
            why = (apps.outcome(r, "romfs", job, result, want == "SUCCEEDED")
                   or boots_valid(r, before))
        tries.record(name, not why, f"{want} cut {cut} of {total}: {why} "
                                    f"{result.console[-1500:] if why else ''}")
    assert not tries.failed, tries.failed[:3]


@pytest.mark.row(row(APP_ROW, "esp32s3"))
@pytest.mark.parametrize("image, want", [(apps.NEW, "SUCCEEDED"), (apps.BAD, "FAILED")],
                         ids=["switch", "rollback"])
def test_cuts_across_an_application_switch_on_the_s3(boards, tries, image, want):
    app_sweep(boards, tries, "esp32s3", image, want)


@pytest.mark.row(row(APP_ROW, "esp32c3"))
@pytest.mark.parametrize("image, want", [(apps.NEW, "SUCCEEDED"), (apps.BAD, "FAILED")],
                         ids=["switch", "rollback"])
def test_cuts_across_an_application_switch_on_the_c3(boards, tries, image, want):
    app_sweep(boards, tries, "esp32c3", image, want)
