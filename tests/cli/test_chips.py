"""`fota publish` and the chip: a firmware image for another chip than a target thing reported
in its device shadow ("chip", lib/fota/shadow.py) is refused before the job is made; a bare
image is published for the chip its header names; `fota build` says which --chip an image
is for."""

from __future__ import annotations

import json

import pytest

from emulator.image import build_app_image
from fotatools.release import ImageError, inspect_image
from tests.cli.standin import StandIn


@pytest.fixture
def cloud(tmp_path):
    s = StandIn(tmp_path / "home")
    s.group("s3-boards", s.things("s3-1", "s3-2"))
    s.things("c3-1", "new-1")
    yield s
    s.close()


def report(cloud: StandIn, thing: str, chip: int) -> None:
    cloud.api.shadows.handle(f"$aws/things/{thing}/shadow/update", json.dumps(
        {"state": {"reported": {"firmware": "1.0.0", "app": "none", "chip": chip}}}).encode())


@pytest.fixture
def s3_image(tmp_path):
    path = tmp_path / "fw-s3.bin"
    path.write_bytes(build_app_image("1.0.1", chip="esp32s3", size=20_000))
    return path


def jobs(cloud, capsys) -> list[str]:
    code, out, err = cloud.fota(capsys, "jobs", "--json")
    assert code == 0, err
    return [j["job_id"] for j in json.loads(out)]


def test_s3_image_is_refused_for_a_thing_that_reported_a_c3(cloud, capsys, s3_image):
    report(cloud, "c3-1", 5)
    report(cloud, "s3-1", 9)
    code, _, err = cloud.fota(capsys, "publish", s3_image, "--thing", "c3-1", "--thing", "s3-1",
                              "--job-id", "mixed")
    assert code == 2, err
    assert "the image is for esp32s3" in err and "c3-1 (esp32c3)" in err and "s3-1" not in err
    assert "mixed" not in jobs(cloud, capsys)


def test_group_members_are_checked_too(cloud, capsys, s3_image):
    report(cloud, "s3-1", 9)
    report(cloud, "s3-2", 0)  # an ESP32 in the S3 group
    code, _, err = cloud.fota(capsys, "publish", s3_image, "--group", "s3-boards", "--job-id", "g")
    assert code == 2 and "s3-2 (esp32)" in err, err
    assert "g" not in jobs(cloud, capsys)


def test_s3_image_goes_to_s3_things_and_to_things_without_a_chip_report(cloud, capsys, s3_image):
    report(cloud, "s3-1", 9)
    report(cloud, "s3-2", 9)
    code, _, err = cloud.fota(capsys, "publish", s3_image, "--group", "s3-boards",
                              "--thing", "new-1", "--job-id", "ok")
    assert code == 0, err  # new-1 never reported: its board checks the image itself
    assert "ok" in jobs(cloud, capsys)


def test_build_names_the_chip_of_an_image_for_another(tmp_path, capsys, s3_image):
    from fotatools import cli

    assert cli.main(["build", str(s3_image), "--out", str(tmp_path / "o")]) == 2
    assert "image is for esp32s3, not esp32 (--chip esp32s3 if" in capsys.readouterr().err
    assert cli.main(["build", str(s3_image), "--chip", "esp32s3", "--out", str(tmp_path / "o")]) == 0
    manifest = json.loads((tmp_path / "o" / "micropython-1.0.1.json").read_text())
    assert manifest["chip"] == "esp32s3"


@pytest.mark.parametrize("chip", ["esp32", "esp32s3", "esp32c3"])
def test_the_chip_comes_from_the_header_when_none_is_given(chip):
    assert inspect_image(build_app_image("1.0.0", chip=chip), None).chip == chip
    with pytest.raises(ImageError, match="chip id 3, which fota does not know"):
        inspect_image(build_app_image("1.0.0", chip_id=3), None)


@pytest.mark.parametrize("chip, mb", [("esp32s3", 8), ("esp32c3", 4)])
def test_flash_writes_the_chips_full_image_at_0x0_and_the_board_boots(tmp_path, capsys, chip, mb):
    import shlex

    from emulator import serialtools
    from emulator.flash import MiB, Flash
    from fotatools import cli
    from tests.flashplan import apply, first_boot

    fw = tmp_path / "firmware.bin"
    fw.write_bytes(_merged(chip, mb))
    assert cli.main(["flash", "/dev/ttyACM0", "--firmware", str(fw), "--device", str(_device(tmp_path)),
                     "--project", str(_project(tmp_path)), "--chip", chip, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    cmds = [shlex.split(ln) for ln in out if not ln.startswith("# ")]
    assert any(f"{mb} MB as the image's bootloader header says" in ln for ln in out), out
    write = next(c for c in cmds if "write-flash" in c)
    assert write[write.index("--chip") + 1] == chip and write[-2:] == ["0x0", str(fw)]
    board = tmp_path / "board.bin"
    board.write_bytes(b"\xff" * (mb * MiB))  # a new board: erased
    other = "esp32c3" if chip == "esp32s3" else "esp32s3"
    with pytest.raises(serialtools.ToolError, match="Wrong --chip argument"):
        apply(board, cmds, skip=lambda c: serialtools.which(c)[0] == "mpremote", chip=other)
    assert board.read_bytes() == b"\xff" * (mb * MiB)  # refused at connect: nothing written
    apply(board, cmds, skip=lambda c: serialtools.which(c)[0] == "mpremote", chip=chip)
    console = first_boot(board, chip=chip)
    assert "Performing initial setup" in console and f"ESP-ROM:{chip}" in console, console
    assert Flash(board).chip() == chip and Flash(board).boot_slot() == "ota_0"


def _merged(chip: str, mb: int) -> bytes:
    from emulator.flash import MiB, default_partitions, merged_image

    return merged_image(build_app_image("1.0.0", chip=chip, size=300_000),
                        default_partitions(mb * MiB, romfs=True, chip=chip), chip=chip)


def _project(tmp_path):
    p = tmp_path / "proj"
    (p / "lib").mkdir(parents=True, exist_ok=True)
    (p / "boot.py").write_text("# boot\n")
    (p / "main.py").write_text("# main\n")
    (p / "lib" / "fota.py").write_text("# lib\n")
    (p / ".deps" / "umqtt").mkdir(parents=True, exist_ok=True)
    (p / ".deps" / "umqtt" / "simple.py").write_text("# umqtt\n")
    return p


def _device(tmp_path):
    d = tmp_path / "dev1"
    (d / "certs").mkdir(parents=True, exist_ok=True)
    for name in ("device.crt.der", "device.key.der", "ca.der"):
        (d / "certs" / name).write_bytes(b"\x30\x00")
    (d / "config.json").write_text(json.dumps({
        "thing": "dev1", "endpoint": "localhost", "port": 8883, "cert": "certs/device.crt.der",
        "key": "certs/device.key.der", "ca": "certs/ca.der"}))
    return d
