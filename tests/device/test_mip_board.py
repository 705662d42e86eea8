"""The library as MicroPython's mip installs it from the index of `fota mip-index`
(tests/firmware/mipsite.py), as the emulated board's /lib: every module imports, from the form
installed, and a firmware job runs through with the .mpy form."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emulator.device import Device
from emulator.flash import create_flash
from tests.device.rig import firmware
from tests.firmware.mipsite import UMQTT, build_index, installed, modules, serve

pytestmark = pytest.mark.skipif(not UMQTT.exists(), reason="umqtt.simple not fetched (make setup)")

# every module of the package and umqtt.simple, each from its file (fota.deltaviper compiles
# its viper loops now; fota.target and fota.smp need no UART until one is opened)
IMPORT_ALL = """
import sys
for name in %r + ["umqtt.simple"]:
    __import__(name)
    print("mip:", name, sys.modules[name].__file__)
print("mip: ok")
"""


@pytest.fixture(scope="module")
def index_url(tmp_path_factory: pytest.TempPathFactory):
    with serve(build_index(tmp_path_factory.mktemp("mip") / "index")) as url:
        yield url


@pytest.mark.parametrize("form", ["mpy", "py"])
def test_every_installed_module_imports_on_the_board(index_url: str, tmp_path: Path, form: str):
    fs = tmp_path / "fs"
    installed(index_url, fs / "lib", **({} if form == "mpy" else {"mpy": False}))
    (fs / "main.py").write_text(IMPORT_ALL % modules())
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    with Device(tmp_path / "flash.bin", fs, heapsize="256k", echo=None) as dev:
        r = dev.run(max_boots=1, timeout=120)
    assert r.exit_reason == "main-returned" and "mip: ok" in r.console, r.console
    for name in modules():
        path = name.replace(".", "/") + ("/__init__" if name == "fota" else "")
        assert f"mip: {name} /lib/{path}.{form}\n" in r.console, r.console
    assert f"mip: umqtt.simple /lib/umqtt/simple.{form}\n" in r.console, r.console


def test_firmware_update_with_the_library_installed_as_mpy(rig, index_url: str):
    r = rig()
    shutil.rmtree(r.fs / "lib")  # the board's /lib: what mip installed, nothing else
    installed(index_url, r.fs / "lib")
    assert not list((r.fs / "lib").rglob("*.py"))
    job = r.publish(firmware("1.0.1"))
    result = r.run()
    assert result.exit_reason == "main-returned", result.console
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", (ex, result.console)
    assert r.boot_slot() == "ota_1" and r.version() == "1.0.1"
