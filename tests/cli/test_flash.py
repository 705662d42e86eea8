"""`fota flash`: the esptool and mpremote commands (no board here, so the assembly is tested)."""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path

import pytest

from fotatools import cli, flashing
from tests.cli.images import app_image, full_image


@pytest.fixture
def project(tmp_path) -> Path:
    p = tmp_path / "proj"
    (p / "lib").mkdir(parents=True)
    (p / "boot.py").write_text("# boot\n")
    (p / "main.py").write_text("# main\n")
    (p / "lib" / "fota.py").write_text("# lib\n")
    (p / ".deps" / "umqtt").mkdir(parents=True)
    (p / ".deps" / "umqtt" / "simple.py").write_text("# umqtt\n")
    return p


@pytest.fixture
def device(tmp_path) -> Path:
    d = tmp_path / "dev1"
    (d / "certs").mkdir(parents=True)
    for name in ("device.crt.der", "device.key.der", "ca.der"):
        (d / "certs" / name).write_bytes(b"\x30\x00")
    (d / "config.json").write_text(json.dumps({
        "thing": "dev1", "endpoint": "localhost", "port": 8883, "cert": "certs/device.crt.der",
        "key": "certs/device.key.der", "ca": "certs/ca.der"}))
    return d


def _dry(capsys, *argv) -> list[list[str]]:
    cmds, _ = _dry_notes(capsys, *argv)
    return cmds


def _dry_notes(capsys, *argv) -> tuple[list[list[str]], list[str]]:
    """The commands `fota flash --dry-run` prints, and the notes (# lines) before them."""
    assert cli.main(["flash", *map(str, argv), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [ln[2:] for ln in lines if ln.startswith("# ")]
    assert notes and lines[:len(notes)] == ["# " + n for n in notes]  # the notes come first
    return [shlex.split(ln) for ln in lines[len(notes):]], notes


ESPTOOL = ["--chip", "esp32", "--port", "/dev/ttyUSB7", "--baud", "921600"]


def test_app_image_goes_to_ota_0_after_checking_the_table_and_erasing_otadata(
        tmp_path, project, device, capsys):
    fw = tmp_path / "app.bin"
    fw.write_bytes(app_image("1.0.0"))
    cmds, notes = _dry_notes(capsys, "/dev/ttyUSB7", "--firmware", fw, "--device", device,
                             "--project", project, "--baud", "921600")
    read, check, erase, write, copy = cmds
    assert Path(read[0]).name == "esptool"
    table = str(Path(tempfile.gettempdir()) / "board-partitions.bin")
    assert read[1:] == ESPTOOL + ["--after", "no-reset", "read-flash", "0x8000", "0xc00", table]
    assert check == [sys.executable, "-m", "fotatools.flashing", "check-table", table,
                     str(len(fw.read_bytes()))]
    assert erase[1:] == ESPTOOL + ["--after", "no-reset", "erase-region", "0xd000", "0x2000"]
    assert write[1:] == ESPTOOL + ["write-flash", "0x10000", str(fw)]  # then it resets
    assert Path(copy[0]).name == "mpremote"
    steps = " ".join(copy[1:]).split(" + ")
    assert steps == [
        f"connect /dev/ttyUSB7 cp {project}/boot.py {project}/main.py :",
        f"cp -r {project}/lib :",
        f"cp -r {project}/.deps/umqtt :lib",
        f"cp -r {device}/certs :",
        f"cp {device}/config.json :",
        "reset"]
    assert notes[1] == ("erase-region 0xd000-0xefff first: otadata (the bootloader then starts "
                        "ota_0, whatever slot ran before)")
    assert notes[2].startswith("kept: the board's filesystem and its files")


def test_full_image_goes_to_0x1000_after_erasing_what_its_table_needs(tmp_path, project, device,
                                                                       capsys):
    # the test image's table: ota_0 alone (0x10000+0x180000), a 4 MB flash: the filesystem
    # MicroPython registers at boot is the rest, 0x190000 on
    fw = tmp_path / "full.bin"
    fw.write_bytes(full_image(app_image("1.0.0")))
    cmds, notes = _dry_notes(capsys, "/dev/ttyUSB0", "--firmware", fw, "--device", device,
                             "--project", project)
    erase, write, _ = cmds
    assert erase[-5:] == ["--after", "no-reset", "erase-region", "0x190000", "0x270000"]
    assert write[-3:] == ["write-flash", "0x1000", str(fw)] and "--after" not in write
    assert "--baud" in write and write[write.index("--baud") + 1] == "460800"
    assert notes[0].startswith(f"full image at 0x1000: bootloader, partition table and app; "
                               f"write-flash erases what it covers (0x1000-")
    assert notes[1].startswith("erase-region 0x190000-0x3fffff first: vfs (the filesystem: the "
                               "first boot formats it only if its first block is erased")
    assert notes[2].startswith("the filesystem runs to the end of the flash, 4 MB as the "
                               "image's bootloader header says")
    assert notes[-1] == "--erase-all erases the whole flash instead"


def test_full_image_of_the_project_erases_romfs_and_the_filesystem(tmp_path, project, device,
                                                                   capsys):
    from emulator.flash import merged_image

    fw = tmp_path / "firmware.bin"
    fw.write_bytes(merged_image(app_image("1.0.0", size=300_000)))
    cmds, notes = _dry_notes(capsys, "/dev/ttyUSB0", "--firmware", fw, "--device", device,
                             "--project", project)
    assert [c[-3:] for c in cmds[:-2]] == [["erase-region", "0x310000", "0xf0000"]]
    assert notes[0].endswith(": nvs, otadata, phy_init, ota_0)")  # in the image's padding
    assert notes[1].startswith("erase-region 0x310000-0x3fffff first: romfs (the application "
                               "slots: a ROMFS image in slot 0 is taken for the application); "
                               "vfs (the filesystem")
    assert "kept: ota_1, whatever it holds" in notes[-2]


def test_erase_all_erases_the_whole_flash_first(tmp_path, project, device, capsys):
    from emulator.flash import merged_image

    fw = tmp_path / "full.bin"
    fw.write_bytes(merged_image(app_image("1.0.0")))
    cmds, notes = _dry_notes(capsys, "/dev/ttyUSB0", "--firmware", fw, "--device", device,
                             "--project", project, "--erase-all")
    erase, write, _ = cmds
    assert erase[-3:] == ["--after", "no-reset", "erase-flash"]
    assert write[-3:] == ["write-flash", "0x1000", str(fw)]
    assert any(n.startswith("erase-flash first (--erase-all): the whole flash") for n in notes)
    assert not any(n.startswith("kept") or "--erase-all erases" in n for n in notes)


def test_erase_all_with_an_app_image_is_refused(tmp_path, project, device, capsys):
    fw = tmp_path / "app.bin"
    fw.write_bytes(app_image("1.0.0"))
    assert cli.main(["flash", "/dev/ttyUSB0", "--firmware", str(fw), "--device", str(device),
                     "--project", str(project), "--erase-all", "--dry-run"]) == 2
    assert "--erase-all goes with a full image" in capsys.readouterr().err


def test_chip_sets_bootloader_offset(tmp_path):
    fw = full_image(app_image("1.0.0"))
    assert flashing.firmware_kind(fw, "esp32") == ("full", 0x1000)
    with pytest.raises(ValueError):  # an ESP32 image is no ESP32-S3 image
        flashing.firmware_kind(fw, "esp32s3")


def test_project_found_from_working_folder(tmp_path, project, device, capsys, monkeypatch):
    fw = tmp_path / "app.bin"
    fw.write_bytes(app_image("1.0.0"))
    monkeypatch.chdir(project)
    cmds = _dry(capsys, "COM3", "--firmware", fw, "--device", device)
    assert f"{project}/boot.py" in cmds[-1] or str(project.resolve() / "boot.py") in cmds[-1]


def test_run_stops_at_first_failure(capfd):
    plan = flashing.FlashPlan("app", 0x10000, [
        [sys.executable, "-c", "print('one')"],
        [sys.executable, "-c", "raise SystemExit(4)"],
        [sys.executable, "-c", "print('never')"]])
    assert flashing.run(plan) == 4
    out = capfd.readouterr().out
    assert out.count("$ ") == 2 and "one\n" in out and "never" not in out


BAD = {
    "missing-firmware": (lambda t, p, d: ["--firmware", t / "nope.bin"], "cannot read firmware"),
    "not-an-image": (lambda t, p, d: ["--firmware", _write(t / "x.bin", b"hello" * 100)],
                     "not an ESP32 image"),
    "too-big-for-slot": (lambda t, p, d: ["--firmware", _write(t / "big.bin", app_image(
        "1.0.0", size=0x180000 + 0x10000))], "does not fit an OTA slot"),
    "no-config": (lambda t, p, d: ["--device", _unlink(d / "config.json")], "config.json"),
    "config-missing-key": (lambda t, p, d: ["--device", _write(d / "config.json",
                                                               b'{"thing": "x"}').parent],
                           "lacks"),
    "cert-missing": (lambda t, p, d: ["--device", _unlink(d / "certs" / "ca.der")],
                     "ca file certs/ca.der is missing"),
    "no-main": (lambda t, p, d: ["--project", _unlink(p / "main.py")], "main.py not found"),
    "no-umqtt": (lambda t, p, d: ["--project", _unlink(p / ".deps" / "umqtt" / "simple.py")],
                 "simple.py not found"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _unlink(path: Path) -> Path:
    path.unlink()
    for parent in path.parents:
        if (parent / "boot.py").exists() or (parent / "certs").is_dir():
            return parent
    raise AssertionError(path)


@pytest.mark.parametrize("case", list(BAD))
def test_flash_bad_input(case, tmp_path, project, device, capsys):
    fw = _write(tmp_path / "app.bin", app_image("1.0.0"))
    make, reason = BAD[case]
    override = [str(x) for x in make(tmp_path, project, device)]
    opts = {"--firmware": str(fw), "--device": str(device), "--project": str(project)}
    opts.update(dict(zip(override[::2], override[1::2])))
    argv = ["flash", "/dev/ttyUSB0", "--dry-run"] + [x for kv in opts.items() for x in kv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fota: error: ") and reason in err and err.count("\n") == 1


def test_absent_serial_port_is_bad_input(tmp_path, project, device, capsys):
    fw = _write(tmp_path / "app.bin", app_image("1.0.0"))
    assert cli.main(["flash", "/dev/ttyNOSUCHPORT", "--firmware", str(fw), "--device",
                     str(device), "--project", str(project)]) == 2
    assert "no serial port" in capsys.readouterr().err


# ---------------------------------------------------------------- what a full image erases
def P(name, type_, sub, offset, size):
    from fotatools.partitions import Partition
    return Partition(name, type_, sub, offset, size)


def test_erase_regions_leave_out_what_the_image_covers_and_merge_neighbours():
    table = [P("nvs", 1, 2, 0x9000, 0x4000), P("otadata", 1, 0, 0xD000, 0x2000),
             P("ota_0", 0, 0x10, 0x10000, 0x100000), P("ota_1", 0, 0x11, 0x110000, 0x100000),
             P("store", 1, 0x82, 0x210000, 0x10000), P("romfs", 1, 0x8F, 0x220000, 0x20000)]
    # the image covers 0x1000..0x12345 (its last sector up to 0x13000)
    assert flashing.erase_regions(table, 4 << 20, (0x1000, 0x12345)) == [
        (0x210000, 0x400000, ["store", "romfs", "vfs"])]  # nvs, otadata: in the image
    # a data partition the image covers in part: the rest of it, from the next sector
    table2 = [P("ota_0", 0, 0x10, 0x10000, 0x10000), P("blob", 1, 0x40, 0x20000, 0x8000)]
    assert flashing.erase_regions(table2, 0x30000, (0x1000, 0x23001)) == [
        (0x24000, 0x30000, ["blob", "vfs"])]
    # apart: two regions
    table2b = [P("ota_0", 0, 0x10, 0x10000, 0x10000), P("blob", 1, 0x40, 0x20000, 0x8000),
               P("ota_1", 0, 0x11, 0x30000, 0x10000)]
    assert flashing.erase_regions(table2b, 0x50000, (0x1000, 0x12000)) == [
        (0x20000, 0x28000, ["blob"]), (0x40000, 0x50000, ["vfs"])]
    # a table with its own vfs: that one, once; none left when the table fills the flash
    table3 = table2 + [P("vfs", 1, 0x83, 0x28000, 0x8000)]
    assert flashing.erase_regions(table3, 0x40000, (0x1000, 0x20000)) == [
        (0x20000, 0x30000, ["blob", "vfs"])]


def test_full_image_whose_app_overflows_its_partition_is_refused(tmp_path, project, device,
                                                                 capsys):
    app = app_image("1.0.0", size=0x180000 + 0x1000)
    fw = tmp_path / "full.bin"
    fw.write_bytes(full_image(app))
    assert cli.main(["flash", "/dev/ttyUSB0", "--firmware", str(fw), "--device", str(device),
                     "--project", str(project), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"the full image holds {len(app):,} bytes from ota_0 (0x10000), which holds 1,572,864" in err


def test_full_image_with_a_damaged_table_is_refused(tmp_path, project, device, capsys):
    data = bytearray(full_image(app_image("1.0.0")))
    data[0x7000 + 20] ^= 1  # a label byte: the MD5 entry no longer matches
    md5_entry = bytes([0xEB, 0xEB]) + b"\xff" * 14
    import hashlib
    data[0x7020:0x7040] = md5_entry + hashlib.md5(bytes(data[0x7000:0x7020])).digest()
    data[0x7000 + 20] ^= 1
    fw = tmp_path / "full.bin"
    fw.write_bytes(bytes(data))
    assert cli.main(["flash", "/dev/ttyUSB0", "--firmware", str(fw), "--device", str(device),
                     "--project", str(project), "--dry-run"]) == 2
    assert "the MD5 of the partition table does not match" in capsys.readouterr().err


# ---------------------------------------------------------------- an app image: the board's table
def board_table(parts) -> bytes:
    from emulator import flashfmt as ff

    return ff.pack_partition_table(parts)


def test_check_table_takes_ota_tables_and_refuses_the_others():
    from emulator.flash import default_partitions
    from emulator.usedboard import stock_partitions

    ok = flashing.check_table(board_table(default_partitions(romfs=True)), 1_500_000)
    assert ok == ("the board's table: ota_0 (0x10000, 1536 KB), ota_1 (0x190000, 1536 KB), "
                  "otadata at 0xd000; its filesystem from 0x350000 to the end of the flash is "
                  "kept")
    assert "from 0x310000" in flashing.check_table(board_table(stock_partitions("ota")), 1000)
    assert flashing.check_table(board_table(default_partitions()), 0x180000)  # exactly a slot
    cases = [
        (board_table(stock_partitions("generic")), 1000,
         "has no OTA slots (app partitions: factory at 0x10000; stock MicroPython's "
         "ESP32_GENERIC has one factory app): flash the full image instead"),
        (b"\xff" * 0xC00, 1000, "the partition table is empty (erased flash?): flash the full "
                                "image"),
        (board_table(default_partitions()), 0x180000 + 1,
         "the app image is 1,572,865 bytes, the board's ota_0 holds 1,572,864"),
    ]
    for data, size, message in cases:
        with pytest.raises(ValueError) as e:
            flashing.check_table(data, size)
        assert message in str(e.value)


def test_check_table_refuses_slots_elsewhere():
    from emulator import flashfmt as ff

    parts = [ff.PartitionEntry("nvs", 1, 2, 0x9000, 0x6000),
             ff.PartitionEntry("otadata", 1, 0, 0xF000, 0x2000),
             ff.PartitionEntry("ota_0", 0, 0x10, 0x20000, 0x180000),
             ff.PartitionEntry("ota_1", 0, 0x11, 0x1A0000, 0x180000)]
    with pytest.raises(ValueError, match="otadata at 0xf000 and ota_0 at 0x20000, not 0xd000 "
                                         "and 0x10000"):
        flashing.check_table(board_table(parts), 1000)


def test_check_table_command(tmp_path):
    import subprocess

    from emulator.usedboard import stock_partitions

    good, bad = tmp_path / "ota.bin", tmp_path / "generic.bin"
    good.write_bytes(board_table(stock_partitions("ota")))
    bad.write_bytes(board_table(stock_partitions("generic")))
    cmd = [sys.executable, "-m", "fotatools.flashing", "check-table"]
    r = subprocess.run(cmd + [str(good), "1000"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("the board's table: ota_0")
    r = subprocess.run(cmd + [str(bad), "1000"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("fota: error: the board's partition table "
                                                     "has no OTA slots")
    r = subprocess.run(cmd + [str(tmp_path / "missing.bin"), "1000"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "No such file" in r.stderr


def test_full_image_whose_app_fills_its_partition_exactly_is_taken(tmp_path):
    app = app_image("1.0.0", size=0x180000)
    assert len(app) == 0x180000
    table, size = flashing.full_image_layout(full_image(app))
    assert size == 4 << 20 and [p.name for p in table] == ["ota_0"]
    with pytest.raises(ValueError, match="holds 1,572,865 bytes from ota_0"):
        flashing.full_image_layout(full_image(app) + b"\xff")
