"""`fota flash`: the esptool and mpremote commands (no board here, so the assembly is tested)."""

from __future__ import annotations

import json
import shlex
import sys
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
    assert cli.main(["flash", *map(str, argv), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# ")
    return [shlex.split(ln) for ln in lines[1:]]


def test_app_image_goes_to_ota_0_after_erasing_otadata(tmp_path, project, device, capsys):
    fw = tmp_path / "app.bin"
    fw.write_bytes(app_image("1.0.0"))
    cmds = _dry(capsys, "/dev/ttyUSB7", "--firmware", fw, "--device", device,
                "--project", project, "--baud", "921600")
    erase, write, copy = cmds
    assert Path(erase[0]).name == "esptool"
    assert erase[1:] == ["--chip", "esp32", "--port", "/dev/ttyUSB7", "--baud", "921600",
                         "erase-region", "0xd000", "0x2000"]
    assert write[1:] == ["--chip", "esp32", "--port", "/dev/ttyUSB7", "--baud", "921600",
                         "write-flash", "0x10000", str(fw)]
    assert Path(copy[0]).name == "mpremote"
    steps = " ".join(copy[1:]).split(" + ")
    assert steps == [
        f"connect /dev/ttyUSB7 cp {project}/boot.py {project}/main.py :",
        f"cp -r {project}/lib :",
        f"cp -r {project}/.deps/umqtt :lib",
        f"cp -r {device}/certs :",
        f"cp {device}/config.json :",
        "reset"]


def test_full_image_goes_to_0x1000(tmp_path, project, device, capsys):
    fw = tmp_path / "full.bin"
    fw.write_bytes(full_image(app_image("1.0.0")))
    cmds = _dry(capsys, "/dev/ttyUSB0", "--firmware", fw, "--device", device,
                "--project", project)
    assert len(cmds) == 2
    assert cmds[0][-3:] == ["write-flash", "0x1000", str(fw)]
    assert "--baud" in cmds[0] and cmds[0][cmds[0].index("--baud") + 1] == "460800"


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
