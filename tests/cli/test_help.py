"""Each command's --help shows the control-plane options it uses, and no others."""

from __future__ import annotations

import pytest

from fotatools import cli

HOME = ["--home"]
CLOUD = ["--backend", "--region", "--endpoint-url"]
STORE = ["--bucket", "--role-arn"]
ALL = HOME + CLOUD + STORE

USES = {
    "cloud": HOME,
    "provision": HOME + CLOUD,
    "group": HOME + CLOUD,
    "build": [],
    "publish": HOME + CLOUD + STORE,
    "rollback": HOME + CLOUD + STORE,
    "status": HOME + CLOUD,
    "cancel": HOME + CLOUD,
    "things": HOME + CLOUD,
    "history": HOME + CLOUD,
    "jobs": HOME + CLOUD,
    "flash": [],
    "mip-index": [],
    "dashboard": HOME + CLOUD,
}


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_every_command_is_listed():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(USES)


@pytest.mark.parametrize("command", list(USES))
def test_help_shows_only_the_options_the_command_uses(command, capsys):
    text = help_of(capsys, command)
    for option in ALL:
        assert (option in text) == (option in USES[command]), option


@pytest.mark.parametrize("command", [c for c, uses in USES.items() if uses])
def test_options_a_command_uses_work_after_it(command, tmp_path, capsys):
    """`fota status J --home DIR` as well as `fota --home DIR status J`."""
    args = cli.build_parser().parse_args(
        [command, *{"cloud": ["status"], "provision": ["t"], "group": ["create", "g"],
                    "publish": [], "rollback": ["old.bin", "--version", "2"], "status": ["j"], "cancel": ["j"],
                    "things": [], "history": ["t"], "jobs": [], "dashboard": []}[command],
         *[a for o in USES[command] for a in (o, "local" if o == "--backend" else "x")]])
    for option in USES[command]:
        assert getattr(args, option[2:].replace("-", "_")) in ("x", "local"), option


def test_the_main_help_has_them_all(capsys):
    text = help_of(capsys)
    assert all(option in text for option in ALL)


@pytest.mark.parametrize("argv", [
    ["build", "fw.bin", "--region", "eu-west-1"],
    ["flash", "/dev/ttyUSB0", "--firmware", "fw.bin", "--device", "d", "--bucket", "b"],
    ["status", "j1", "--role-arn", "arn:aws:iam::123456789012:role/r"],
    ["cloud", "start", "--backend", "aws"],
])
def test_an_option_a_command_does_not_use_is_refused_after_it(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
