"""Bad input to every command: exit code 2 and one line `fota: error: ...`, no traceback."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import CLEARED
from fotatools import cli
from tests.cli.images import app_image

# {IMG} is a good app image, {MAN} a manifest with a bad format, {HOME} the state folder
CASES = {
    "no-command": ([], "required"),
    "unknown-command": (["frobnicate"], "invalid choice"),
    "unknown-option": (["status", "j1", "--colour"], "unrecognized arguments"),
    "unknown-backend": (["--backend", "gcp", "status", "j1"], "invalid choice"),
    "cloud-action": (["cloud", "restart"], "invalid choice"),
    "provision-name": (["provision", "bad name!"], "bad thing name"),
    "provision-twice": (["provision", "dev1"], "already provisioned"),
    "provision-out-is-file": (["provision", "dev2", "--out", "{IMG}"], "not a folder"),
    "provision-signer-missing": (["provision", "dev3", "--signer", "{HOME}/nope.pem"], "not found"),
    "provision-signer-not-key": (["provision", "dev3", "--signer", "{IMG}"], "not a PEM key"),
    "group-action": (["group", "delete", "g1"], "invalid choice"),
    "group-name": (["group", "create", "bad/group"], "bad group name"),
    "group-thing": (["group", "create", "g1", "bad thing"], "bad thing name"),
    "build-missing": (["build", "{HOME}/nope.bin"], "not found"),
    "build-not-image": (["build", "{MAN}"], "not an ESP32 image"),
    "build-long-version": (["build", "{IMG}", "--version", "v" * 40], "bad version"),
    "build-bad-key": (["build", "{IMG}", "--sign", "{IMG}"], "cannot read the signing key"),
    "build-chip": (["build", "{IMG}", "--chip", "esp8266"], "invalid choice"),
    "publish-no-target": (["publish", "{IMG}"], "give the targets"),
    "publish-mqtt-unsigned": (["publish", "{IMG}", "--thing", "t", "--protocol", "mqtt"], "must be signed"),
    "publish-mqtt-slot": (["publish", "{IMG}", "--thing", "t", "--protocol", "mqtt", "--slot", "1"],
                          "--slot goes with --protocol https"),
    "publish-protocol": (["publish", "{IMG}", "--thing", "t", "--protocol", "ftp"], "invalid choice"),
    "publish-bad-thing": (["publish", "{IMG}", "--thing", "a b"], "bad thing name"),
    "publish-slot": (["publish", "{IMG}", "--thing", "t", "--slot", "16"], "bad --slot"),
    "publish-slot-type": (["publish", "{IMG}", "--thing", "t", "--slot", "x"], "invalid int"),
    "publish-job-id": (["publish", "{IMG}", "--thing", "t", "--job-id", "a.b"], "bad --job-id"),
    "publish-rate-zero": (["publish", "{IMG}", "--thing", "t", "--rate", "0/min"], "bad --rate"),
    "publish-rate-text": (["publish", "{IMG}", "--thing", "t", "--rate", "fast"], "bad --rate"),
    "publish-abort": (["publish", "{IMG}", "--thing", "t", "--abort-percent", "0"],
                      "bad --abort-percent"),
    "publish-abort-min": (["publish", "{IMG}", "--thing", "t", "--abort-min", "3"],
                          "needs --abort-percent"),
    "publish-timeout": (["publish", "{IMG}", "--thing", "t", "--timeout", "0"], "bad --timeout"),
    "publish-expires": (["publish", "{IMG}", "--thing", "t", "--expires", "30"],
                        "bad --expires"),
    "publish-interval": (["publish", "{IMG}", "--thing", "t", "--watch", "--interval", "0"],
                         "bad --interval"),
    "publish-missing": (["publish", "{HOME}/nope.json", "--thing", "t"], "not found"),
    "publish-bad-manifest": (["publish", "{MAN}", "--thing", "t"], "not a fota release"),
    "status-job-id": (["status", "bad id"], "bad job id"),
    "status-timeout": (["status", "j1", "--watch", "--timeout", "-1"], "bad --timeout"),
    "status-interval": (["status", "j1", "--interval", "0"], "bad --interval"),
    "cancel-job-id": (["cancel", "x" * 65], "bad job id"),
    "flash-missing-args": (["flash", "/dev/ttyUSB0"], "required"),
    "flash-baud": (["flash", "/dev/ttyUSB0", "--firmware", "{IMG}", "--device", "{HOME}",
                    "--baud", "0"], "bad --baud"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case, tmp_path, monkeypatch, capsys):
    for k in CLEARED:
        monkeypatch.delenv(k, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("FOTA_HOME", str(home))
    (home / "things" / "dev1").mkdir(parents=True)
    (home / "things" / "dev1" / "device.key.pem").write_text("key")
    img = tmp_path / "app.bin"
    img.write_bytes(app_image("1.0.0"))
    man = tmp_path / "m.json"
    man.write_text(json.dumps({"format": "something-else"}))
    argv, reason = CASES[case]
    argv = [a.replace("{IMG}", str(img)).replace("{MAN}", str(man)).replace("{HOME}", str(home))
            for a in argv]
    with pytest.raises(SystemExit) as e:
        raise SystemExit(cli.main(argv))
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("fota: error: "), captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert reason in captured.err
    assert "Traceback" not in captured.err
