"""`make firmware` against a fake MicroPython tree (no ESP-IDF needed): each VERSION ends up in
the app descriptor, odd VERSION strings are refused before anything is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fotatools.release import inspect_image

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BUILD = "build-FOTA_ESP32"

# ports/esp32/Makefile of the fake tree: the targets the project's Makefile calls, running
# fake_idf.py where the real one runs idf.py.
FAKE_PORT_MAKEFILE = """\
BOARD ?= $(notdir $(BOARD_DIR:/=))
BUILD ?= build-$(BOARD)
.PHONY: all submodules
all:
\t{python} {fake} "$(BOARD_DIR)" "$(BUILD)"
submodules:
\t@echo "fake: submodules"
"""

# MicroPython's own sdkconfig files that the board lists (the options that matter here).
PORT_DEFAULTS = {
    "boards/sdkconfig.base": "CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=y\n"
                             "CONFIG_APP_EXCLUDE_PROJECT_NAME_VAR=y\n"
                             "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y\n",
    "boards/sdkconfig.ble": "CONFIG_BT_ENABLED=y\n",
    "boards/ESP32_GENERIC/sdkconfig.ota": "CONFIG_PARTITION_TABLE_CUSTOM=y\n",
}


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the project's Makefile and firmware/, a fake MicroPython checkout)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    shutil.copytree(ROOT / "firmware", repo / "firmware",
                    ignore=shutil.ignore_patterns("sdkconfig.version*", "sdkconfig.partitions*"))
    port = tmp_path / "mpy" / "ports" / "esp32"
    for rel, text in PORT_DEFAULTS.items():
        (port / rel).parent.mkdir(parents=True, exist_ok=True)
        (port / rel).write_text(text)
    (port / "Makefile").write_text(FAKE_PORT_MAKEFILE.format(python=sys.executable,
                                                             fake=HERE / "fake_idf.py"))
    return repo, tmp_path / "mpy"


def make_firmware(repo: Path, mpy: Path, version: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "cli"), str(ROOT / "tools")]))
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "-C", str(repo), "firmware", f"MPY_DIR={mpy}", f"VERSION={version}"],
                          capture_output=True, text=True, env=env, timeout=120)


def built_version(mpy: Path) -> str:
    return inspect_image((mpy / "ports/esp32" / BUILD / "micropython.bin").read_bytes()).version


def test_each_version_reaches_the_app_descriptor(tree: tuple[Path, Path]) -> None:
    repo, mpy = tree
    for version in ("1.0.0", "1.0.1", "v2.0.0-rc.1+build.7"):
        r = make_firmware(repo, mpy, version)
        assert r.returncode == 0, r.stdout + r.stderr
        assert built_version(mpy) == version
    assert (repo / "firmware/FOTA_ESP32/sdkconfig.version").read_text() == \
        'CONFIG_APP_PROJECT_VER="v2.0.0-rc.1+build.7"\n'
    cfg = (mpy / "ports/esp32" / BUILD / "sdkconfig").read_text()
    csv = repo / "firmware/FOTA_ESP32/partitions.csv"
    assert f'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="{csv}"' in cfg


def test_same_version_keeps_the_configuration(tree: tuple[Path, Path]) -> None:
    # a rebuild of the same version is incremental: the build folder's sdkconfig stays
    repo, mpy = tree
    assert make_firmware(repo, mpy, "1.0.0").returncode == 0
    cfg = mpy / "ports/esp32" / BUILD / "sdkconfig"
    cfg.write_text(cfg.read_text() + "CONFIG_LOG_DEFAULT_LEVEL_DEBUG=y\n")
    r = make_firmware(repo, mpy, "1.0.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CONFIG_LOG_DEFAULT_LEVEL_DEBUG=y" in cfg.read_text()
    assert "fresh configuration" not in r.stdout


def test_a_changed_board_file_makes_a_fresh_configuration(tree: tuple[Path, Path]) -> None:
    repo, mpy = tree
    assert make_firmware(repo, mpy, "1.0.0").returncode == 0
    cfg = mpy / "ports/esp32" / BUILD / "sdkconfig"
    assert "CONFIG_APP_EXCLUDE_PROJECT_VER_VAR=n" in cfg.read_text()
    fota = repo / "firmware/FOTA_ESP32/sdkconfig.fota"
    fota.write_text(fota.read_text() + "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=n\n")
    later = cfg.stat().st_mtime + 10
    os.utime(fota, (later, later))
    r = make_firmware(repo, mpy, "1.0.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=n" in cfg.read_text()
    assert built_version(mpy) == "1.0.0"


@pytest.mark.parametrize("version, why", [
    ('1.0"1', "letters, digits"),
    ("1.0 1", "letters, digits"),
    ("1.0;1", "letters, digits"),
    ("1.0.1'", "letters, digits"),
    ("1" * 32, "32 characters, the app descriptor holds 31"),
    ("", "set VERSION"),
])
def test_odd_versions_are_refused_before_anything_is_written(tree: tuple[Path, Path], version: str,
                                                            why: str) -> None:
    repo, mpy = tree
    r = make_firmware(repo, mpy, version)
    assert r.returncode != 0
    assert why in r.stdout + r.stderr
    assert not (repo / "firmware/FOTA_ESP32/sdkconfig.version").exists()
    assert not (mpy / "ports/esp32" / BUILD).exists()


def test_longest_version_fits(tree: tuple[Path, Path]) -> None:
    repo, mpy = tree
    r = make_firmware(repo, mpy, "1." + "2" * 29)
    assert r.returncode == 0, r.stdout + r.stderr
    assert built_version(mpy) == "1." + "2" * 29
