"""`fota cloud start --host NAME`: the local stand-in for a board on the network.

127.0.0.2 (routed to lo like all of 127.0.0.0/8) stands for this machine's LAN address.
"""

from __future__ import annotations

import json

from tests.cli.conftest import Fota, base_env, unique


def one_line_error(r, code: int = 2) -> bool:
    return r.code == code and r.err.startswith("fota: error: ") and r.err.count("\n") == 1


def test_cloud_start_with_hosts(tmp_path):
    env = base_env(tmp_path)
    env["FOTA_BACKEND"] = "local"
    fota = Fota(env, tmp_path)
    home = tmp_path / "home"

    for bad in ("--host=bad_name", "--host=10.0.0", "--host=::1"):
        r = fota("cloud", "start", bad)
        assert one_line_error(r) and "--host" in r.err, r.err
    r = fota("cloud", "status", "--host", "127.0.0.2")
    assert one_line_error(r)
    assert fota("cloud", "status").code == 3  # nothing was started

    r = fota("cloud", "start", "--host", "127.0.0.2", "--host", "Board-Host.Example", "--json")
    assert r.code == 0, r.err
    try:
        st = json.loads(r.out)
        assert st["hosts"] == ["127.0.0.2", "board-host.example"] and st["mqtt_host"] == "127.0.0.2"
        r = fota("cloud", "status")
        assert r.code == 0 and f"127.0.0.2:{st['mqtt_port']}" in r.out
        assert "127.0.0.2, board-host.example" in r.out and "0.0.0.0" in r.out

        thing = unique("board")
        r = fota("provision", thing)
        assert r.code == 0, r.err
        config = json.loads((home / "things" / thing / "device" / "config.json").read_text())
        assert config["endpoint"] == "127.0.0.2" and config["port"] == st["mqtt_port"]

        r = fota("cloud", "start", "--host", "127.0.0.3")
        assert one_line_error(r) and "stop it first" in r.err, r.err
        assert fota("cloud", "start").code == 0  # no --host: the running one, as it is
    finally:
        assert fota("cloud", "stop").code == 0

    r = fota("cloud", "start", "--json")  # a restart keeps the names
    try:
        assert r.code == 0, r.err
        assert json.loads(r.out)["hosts"] == ["127.0.0.2", "board-host.example"]
    finally:
        assert fota("cloud", "stop").code == 0
