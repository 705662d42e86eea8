"""A secondary MCU (the simulated MCUboot MCU on the board's UART 1) updated by afr_ota jobs:
the image goes over SMP, is tested, its version read back and only then confirmed; a job of
the secondary alone needs no reset of the ESP32, one with file 0 too updates the secondary
first. Every fault of the MCU or of the image ends the job FAILED naming the file and the
reason, with nothing of the ESP32 touched and the loop alive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.secondary import Secondary
from emulator.secondary.mcuimage import make_image, parse
from tests.device.rig import ONCE, firmware
from tests.device.test_file_targets import file_version, multi_job
from tests.device.test_signed import OTHER, sig, signed_rig

MCU_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def mcu_image(version=(1, 1, 0, 0), size=20_000, key=MCU_KEY, extra=b"") -> bytes:
    body = (bytes(range(256)) * (size // 256 + 1))[:size] + extra
    return make_image(body, version, key=key)


APP = ONCE.replace("import fota\n", """import fota, machine
from fota import target
fota.targets[1] = target.SmpTarget(machine.UART(1, 115200, tx=17, rx=16, rxbuf=1024), timeout_ms=1000,
                                    boot_ms=5000)
fota.targets[2] = target.FileTarget("data/fpga.bit")
fota.on_progress = lambda fid, step, done, size: print("app: file %d %s %d/%d" % (fid, step, done, size))
""")


@pytest.fixture()
def mcu(tmp_path):
    with Secondary(tmp_path / "mcu", key=pem(MCU_KEY), primary=mcu_image((1, 0, 0, 0))) as m:
        yield m


def board(rig, mcu, app=APP):
    r = signed_rig(rig)
    (r.fs / "main.py").write_text(app)
    r.run_mcu = lambda **kw: r.run(uarts={1: mcu.port}, **kw)
    return r


def running(mcu) -> tuple[str | None, dict]:
    """The version in the MCU's primary slot and that slot's trailer."""
    return parse(mcu.slot("primary"))[0].version_str, mcu.status()["trailers"]["primary"]


def test_a_secondary_alone_is_tested_read_back_and_confirmed(rig, mcu, tmp_path):
    # the image made and signed with MCUboot's imgtool
    raw, signed, key = tmp_path / "app.bin", tmp_path / "app.signed.bin", tmp_path / "mcu.pem"
    raw.write_bytes(bytes(range(256)) * 80)
    key.write_bytes(pem(MCU_KEY))
    subprocess.run([str(Path(sys.executable).parent / "imgtool"), "sign", "-k", str(key), "--version", "1.2.0",
                    "--header-size", "0x200", "--slot-size", "0x40000", "--pad-header", str(raw), str(signed)],
                   check=True, capture_output=True)
    r = board(rig, mcu)
    before = r.running_slot_bytes()
    job = multi_job(r, [(1, signed.read_bytes(), "mcu.signed.bin")])
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console + mcu.log()
    assert ex.status_details == {"step": "confirm", "file_1": "1.2.0"}
    assert running(mcu) == ("1.2.0", {"magic": True, "copy_done": True, "image_ok": True})
    assert "fota: [confirm] file 1: version 1.2.0 confirmed" in result.console
    assert result.boot_count == 1 and r.running_slot_bytes() == before  # no ESP32 reset
    assert r.file("fota.json") is None


def test_firmware_secondary_and_file_in_one_job(rig, mcu):
    r = board(rig, mcu)
    r.put_file("data/fpga.bit", b"old")
    data = b"bitstream" * 1000
    job = multi_job(r, [(0, firmware("1.0.1", size=100_000), "fw.bin"), (1, mcu_image(), "mcu.bin"),
                        (2, data, "fpga.bit")])
    result = r.run_mcu()
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console + mcu.log()
    assert ex.status_details == {"step": "confirm", "version": "1.0.1", "from_version": "1.0.0",
                                 "file_1": "1.1.0", "file_2": file_version(data),
                                 "app_version": "none"}  # no application in a slot here
    assert r.version() == "1.0.1" and running(mcu)[0] == "1.1.0" and r.file("data/fpga.bit") == data
    # the secondary's test boot and confirmation come before the ESP32's trial boot
    assert result.console.index("[confirm] file 1") < result.console.index("[boot] slot")


def test_an_upload_cut_by_a_reset_of_the_esp32_resumes_where_the_mcu_is(rig, mcu):
    # The application resets the board in the middle of the upload (once); the MCU keeps its
    # upload; the next boot asks it where it stands and sends only the rest.
    app = APP.replace("fota.on_progress = ", """import os
def cut(fid, step, done, size):
    if fid == 1 and done > size // 2 and "cut" not in os.listdir():
        open("cut", "w").close()
        print("app: reset at", done)
        machine.reset()
fota.on_progress = cut
_unused = """)
    r = board(rig, mcu, app)
    image = mcu_image(size=100_000)
    job = multi_job(r, [(1, image, "mcu.bin")])
    result = r.run_mcu(max_boots=3)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console + mcu.log()
    assert result.boot_count == 2
    log = mcu.log()
    assert log.count("upload of %d bytes started" % len(image)) == 1, log
    assert "bytes from byte " in result.console.split("app: reset at")[1], result.console
    assert mcu.slot("primary")[:len(image)] == image


CHUNK = 448  # upload bytes per request: the MCU's 1024-byte buffer, cut to the 512-byte MTU, less 64


def last_chunk(image: bytes) -> int:
    return (len(image) - 1) // CHUNK * CHUNK


# reasons: {n} the image's size, {last} where its last chunk starts
FAULTS = [
    ("silent", dict(silent=True), "download", "file 1: secondary: no answer to image state in 1000 ms"),
    ("garbage", dict(corrupt=-1), "download", "file 1: secondary: garbled answer to image state: bad CRC"),
    ("reset mid-upload", dict(reset_at=9000), "download",
     "file 1: secondary went back to byte 0 of the upload (did it reset?)"),
    # the slot lists the image (its hash TLV is in), whose signature TLV is cut: never tested
    ("reset in the last chunk", dict(reset_at=20620), "activate",
     "file 1: secondary: image state refused: group 1 rc 5 (invalid TLV)"),
    ("refused upload", dict(refuse="no room for the radio calibration"), "download",
     "file 1: secondary at byte {last} of {n}: image upload refused: group 1 rc 1 (unknown)"),
]


@pytest.mark.parametrize("name,faults,step,reason", FAULTS, ids=[f[0] for f in FAULTS])
def test_a_faulty_mcu_fails_the_job(rig, mcu, name, faults, step, reason):
    r = board(rig, mcu)
    before = r.running_slot_bytes()
    mcu.faults(**faults)
    image = mcu_image()
    job = multi_job(r, [(1, image, "mcu.bin")])
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == \
        ("FAILED", step, reason.format(n=len(image), last=last_chunk(image))), result.console + mcu.log()
    assert "app: done 1.0.0" in result.console  # the flow returned: the loop goes on
    assert result.boot_count == 1 and r.running_slot_bytes() == before
    mcu.clear_faults()
    assert running(mcu)[0] == "1.0.0"


BAD_IMAGES = [
    ("signed by another key", lambda: mcu_image(key=OTHER_KEY), {}, "download",
     "file 1: secondary at byte {last} of {n}: image upload refused: group 1 rc 5 (invalid TLV)"),
    ("larger than the slot", lambda: mcu_image(size=70_000), dict(slot_size=0x10000), "download",
     "file 1: secondary at byte 0 of {n}: image upload refused: group 1 rc 30 (image too large for its slot)"),
    ("not newer", lambda: mcu_image((1, 0, 0, 0)), {}, "download",
     "file 1: version 1.0.0 is not newer than the MCU's 1.0.0"),
    ("not an MCUboot image", lambda: b"\x00" * 4000, {}, "download",
     "file 1: not an MCUboot image (header magic 00000000)"),
    ("not an MCUboot image past the header check here", lambda: b"\x3d\xb8\xf3\x96" + b"\x00" * 16 + b"\x02" + b"\x00" * 4000,
     {}, "download", "file 1: secondary at byte 0 of {n}: image upload refused: group 1 rc 22 (invalid image header)"),
]


@pytest.mark.parametrize("name,image,mcu_kw,step,reason", BAD_IMAGES, ids=[b[0] for b in BAD_IMAGES])
def test_an_image_the_mcu_refuses_fails_the_job(rig, tmp_path, name, image, mcu_kw, step, reason):
    with Secondary(tmp_path / "mcu", key=pem(MCU_KEY), primary=mcu_image((1, 0, 0, 0)), **mcu_kw) as m:
        r = board(rig, m)
        before = r.running_slot_bytes()
        data = image()
        job = multi_job(r, [(1, data, "mcu.bin")])
        result = r.run_mcu(max_boots=2)
        ex = r.execution(job)
        assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == \
            ("FAILED", step, reason.format(n=len(data), last=last_chunk(data))), result.console + m.log()
        assert result.boot_count == 1 and r.running_slot_bytes() == before
        assert running(m) == ("1.0.0", {"magic": False, "copy_done": False, "image_ok": False})
        assert set(m.slot("secondary")) == {0xFF}  # refused by the MCU, or erased by the ESP32


def test_an_image_not_signed_by_the_fleets_signer_is_never_tested(rig, mcu):
    # The ESP32 checks the file's signature after the upload: a bad one is erased from the
    # secondary slot and never set for test.
    r = board(rig, mcu)
    job = multi_job(r, [(1, mcu_image(), "mcu.bin")], lambda d: sig(d, OTHER))
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    assert (ex.status, ex.status_details.get("reason")) == ("FAILED", "file 1: signature does not verify"), \
        result.console + mcu.log()
    assert running(mcu) == ("1.0.0", {"magic": False, "copy_done": False, "image_ok": False})
    assert set(mcu.slot("secondary")) == {0xFF} and "img: secondary slot erased" in mcu.log()


def test_a_secondary_that_reverts_after_its_test_boot_fails_the_job(rig, mcu):
    # The ESP32 resets once its secondary is on trial (before it reads the version back); the
    # secondary is power-cycled meanwhile, so MCUboot reverts the unconfirmed image; the
    # ESP32's next boot reads back the old version.
    app = APP.replace("fota.on_progress = ", """import os
def cut(fid, step, done, size):
    if step == "activate" and "cut" not in os.listdir():
        open("cut", "w").close()
        machine.reset()
fota.on_progress = cut
_unused = """)
    r = board(rig, mcu, app)
    before = r.running_slot_bytes()
    job = multi_job(r, [(1, mcu_image(), "mcu.bin")])
    first = r.run_mcu(max_boots=1)
    assert "file 1: version 1.1.0 activated" in first.console, first.console + mcu.log()
    assert running(mcu)[0] == "1.1.0"  # on trial
    mcu.power_cycle()
    assert running(mcu) == ("1.0.0", {"magic": True, "copy_done": True, "image_ok": True})  # reverted
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == \
        ("FAILED", "activate", "file 1: reverted to 1.0.0 after its test boot"), result.console + mcu.log()
    assert result.boot_count == 1 and r.running_slot_bytes() == before
    assert "app: done 1.0.0" in result.console and r.file("fota.json") is None


def test_main_py_that_registers_its_targets_with_fota_run(rig, mcu):
    # A main.py of the kind the README shows: the secondary registered through fota.run(targets=...).
    import time

    from emulator.device import Device
    from tests.device.test_main import wait_for

    r = signed_rig(rig)
    (r.fs / "main.py").write_text(
        "import fota, machine\n"
        "from fota.target import SmpTarget\n"
        "fota.run(targets={1: SmpTarget(machine.UART(1, 115200, tx=17, rx=16, rxbuf=1024))})\n")
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None, uarts={1: mcu.port})
    dev.start(timeout=120)
    try:
        wait_for(lambda: "app: firmware 1.0.0" in dev.console, what="the device to start", dev=dev)
        time.sleep(1.0)
        job = multi_job(r, [(1, mcu_image(), "mcu.bin")])
        wait_for(lambda: r.execution(job).status == "SUCCEEDED", timeout=90, what="SUCCEEDED", dev=dev)
    finally:
        dev.stop()
    assert running(mcu) == ("1.1.0", {"magic": True, "copy_done": True, "image_ok": True})
    assert "app: error" not in dev.console


def test_a_job_of_three_files_fits_the_heap_budget_the_readme_gives(rig, mcu):
    # Firmware, secondary and file in one job, with the library in flash (ROMFS) and no more
    # heap than docs/figures.md gives: the whole cycle's budget and what the secondary adds.
    import re

    from tests.device import romlib
    from tests.device.rig import ROOT
    from tests.device.test_heap import readme_budget_kb

    row = next(ln for ln in (ROOT / "docs" / "figures.md").read_text().splitlines()
               if ln.startswith("| heap for a job of three files"))
    extra_kb = int(re.search(r"budget plus (\d+) KB", row).group(1))
    r = signed_rig(rig)
    image_kb = -(-romlib.install(r.fs, APP + "print('app: library', fota.__file__)\n") // 1024) + 1
    r.put_file("data/fpga.bit", b"old")
    data = b"bitstream" * 3000
    job = multi_job(r, [(0, firmware("1.0.1", size=1_500_000), "fw.bin"), (1, mcu_image(size=60_000), "mcu.bin"),
                        (2, data, "fpga.bit")])
    result = r.run(heapsize=f"{readme_budget_kb() + extra_kb + image_kb}k", uarts={1: mcu.port})
    assert "app: library /rom/fota/__init__.mpy" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1" and running(mcu)[0] == "1.1.0" and r.file("data/fpga.bit") == data


def test_a_reset_during_the_firmware_download_does_not_update_the_secondary_again(rig, mcu):
    app = APP.replace("fota.on_progress = ", """import os
def cut(fid, step, done, size):
    if fid == 0 and done > size // 2 and "cut" not in os.listdir():
        open("cut", "w").close()
        machine.reset()
fota.on_progress = cut
_unused = """)
    r = board(rig, mcu, app)
    job = multi_job(r, [(0, firmware("1.0.1", size=300_000), "fw.bin"), (1, mcu_image(), "mcu.bin")])
    result = r.run_mcu(max_boots=4)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console + mcu.log()
    assert ex.status_details["file_1"] == "1.1.0" and r.version() == "1.0.1"
    assert mcu.log().count("upload of") == 1 and result.boot_count == 3
    assert "resuming at byte" in result.console


def test_a_bad_firmware_after_the_secondary_names_file_0(rig, mcu):
    # The files come first: the secondary is updated, then this processor's image is refused.
    # The job names file 0; the secondary keeps its new (confirmed) version.
    r = board(rig, mcu)
    new = firmware("1.0.1", size=100_000)
    job = multi_job(r, [(0, new, "fw.bin"), (1, mcu_image(), "mcu.bin")],
                    lambda d: sig(d, OTHER) if d == new else sig(d))
    before = r.running_slot_bytes()
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == \
        ("FAILED", "verify", "file 0: signature does not verify"), result.console
    assert result.boot_count == 1 and r.running_slot_bytes() == before
    assert running(mcu) == ("1.1.0", {"magic": True, "copy_done": True, "image_ok": True})


def test_fota_publish_of_several_files_end_to_end(rig, mcu, cloud, tmp_path):
    # The host tool signs the files, makes the stream and the job; the device carries it out.
    from tests.device.test_signed import KEY, pem as key_pem

    _, home = cloud
    r = board(rig, mcu)
    r.put_file("data/fpga.bit", b"old")
    key = tmp_path / "signer.pem"
    key.write_bytes(key_pem(KEY))
    image = tmp_path / "mcu.signed.bin"
    image.write_bytes(mcu_image((1, 3, 0, 0)))
    bit = tmp_path / "fpga.bit"
    bit.write_bytes(b"bits" * 3000)
    fota = [str(Path(sys.executable).parent / "fota"), "--home", str(home)]
    out = subprocess.run(fota + ["publish", "--file", f"1={image}", "--file", f"2={bit}:fpga.bit",
                                 "--sign", str(key), "--thing", r.thing, "--json"],
                         check=True, capture_output=True, text=True).stdout
    import json

    published = json.loads(out)
    result = r.run_mcu(max_boots=2)
    ex = r.execution(published["job_id"])
    assert ex.status == "SUCCEEDED", result.console + mcu.log()
    assert ex.status_details == {"step": "confirm", "file_1": "1.3.0", "file_2": file_version(b"bits" * 3000)}
    assert running(mcu)[0] == "1.3.0" and r.file("data/fpga.bit") == b"bits" * 3000


def test_garbled_answers_now_and_then_are_asked_again(rig, mcu):
    r = board(rig, mcu)
    mcu.faults(corrupt=2)  # the next two answers go out with a bad CRC
    job = multi_job(r, [(1, mcu_image(), "mcu.bin")])
    result = r.run_mcu(max_boots=2)
    assert r.execution(job).status == "SUCCEEDED", result.console + mcu.log()
    assert running(mcu) == ("1.1.0", {"magic": True, "copy_done": True, "image_ok": True})


@pytest.mark.parametrize("marker", [b"mcusim:crash", b"mcusim:hang"], ids=["crashes", "hangs"])
def test_a_new_image_that_crashes_or_hangs_on_its_test_boot_is_reverted(rig, mcu, marker):
    # It crashes as it starts (or hangs until its watchdog resets it): MCUboot swaps the old
    # image back at that reset; the ESP32 reads back the old version and confirms nothing.
    r = board(rig, mcu)
    before = r.running_slot_bytes()
    job = multi_job(r, [(1, mcu_image(extra=marker), "mcu.bin")])
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == \
        ("FAILED", "activate", "file 1: reverted to 1.0.0 after its test boot"), result.console + mcu.log()
    assert running(mcu) == ("1.0.0", {"magic": True, "copy_done": True, "image_ok": True})
    assert result.boot_count == 1 and r.running_slot_bytes() == before
    assert "app: done 1.0.0" in result.console


# An application with a watchdog of 2 s (4 s with the emulator's grace) and a secondary that
# may take 2 s per answer: every wait of the files step must feed it.
WATCHED = APP.replace("timeout_ms=1000", "timeout_ms=2000").replace(
    "fota.handle_fota_jobs(jobs, force=True)",
    "fota.watchdog = machine.WDT(timeout=2000)\nfota.handle_fota_jobs(jobs, force=True)")

# reasons: {n} the image's size
SLOW = [
    ("a byte per answer", dict(slow=[1, 50]), "download",
     "file 1: secondary took 1 of 448 bytes per answer at byte 9 of {n}, 9 times: too slow"),
    ("less than half a chunk per answer", dict(slow=[223, 0]), "download",
     "file 1: secondary took 223 of 448 bytes per answer at byte 2007 of {n}, 9 times: too slow"),
    ("half a chunk per answer", dict(slow=[224, 0]), "confirm", None),
    ("8 short answers", dict(slow=[1, 0, 8]), "confirm", None),
    ("9 short answers", dict(slow=[1, 0, 9]), "download",
     "file 1: secondary took 1 of 448 bytes per answer at byte 9 of {n}, 9 times: too slow"),
    ("late answers", dict(slow=[0, 1500, 4]), "confirm", None),
    ("a stall within the tries", dict(stall=[4096, 3]), "confirm", None),
    ("a stall at the last chunk", dict(stall=[20620, 3]), "confirm", None),  # its first answer lost
    ("a stall for good", dict(stall=[4096, -1]), "download",
     "file 1: secondary at byte 4032 of {n}: no answer to image upload in 2000 ms"),
]


@pytest.mark.parametrize("name,faults,step,reason", SLOW, ids=[s[0] for s in SLOW])
def test_a_slow_or_stalling_mcu_ends_the_job_with_no_watchdog_reset(rig, mcu, name, faults, step, reason):
    # Before: an MCU taking a byte per answer made the upload send hundreds of requests per
    # block without feeding the watchdog: three watchdog resets, then "interrupted 3 times".
    r = board(rig, mcu, WATCHED)
    before = r.running_slot_bytes()
    mcu.faults(**faults)
    image = mcu_image()
    job = multi_job(r, [(1, image, "mcu.bin")])
    result = r.run_mcu(max_boots=2)
    ex = r.execution(job)
    status = "FAILED" if reason else "SUCCEEDED"
    assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == \
        (status, step, reason and reason.format(n=len(image))), result.console + mcu.log()
    assert result.boot_count == 1 and "app: done 1.0.0" in result.console  # no reset; the loop goes on
    assert r.running_slot_bytes() == before
    mcu.clear_faults()
    assert running(mcu)[0] == ("1.0.0" if reason else "1.1.0")


def test_a_long_wait_for_the_mcus_reset_feeds_the_watchdog(rig, mcu):
    # reset_ms longer than the watchdog's period: the wait is fed all along.
    r = board(rig, mcu, WATCHED.replace("boot_ms=5000)", "boot_ms=5000, reset_ms=5000)"))
    job = multi_job(r, [(1, mcu_image(), "mcu.bin")])
    result = r.run_mcu(max_boots=2)
    assert r.execution(job).status == "SUCCEEDED", result.console + mcu.log()
    assert result.boot_count == 1 and running(mcu)[0] == "1.1.0"
