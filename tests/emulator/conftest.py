"""Fixtures for the emulator tests."""

from __future__ import annotations

import pytest

from tests.emulator.emuhelpers import Board
from emulator.device import find_micropython
from emulator.flash import create_flash
from emulator.image import build_app_image


@pytest.fixture(scope="session")
def v1_image() -> bytes:
    return build_app_image("v1.0.0", payload={"fwinfo.py": "VERSION = 'v1.0.0'\n"})


@pytest.fixture(scope="session")
def v2_image() -> bytes:
    return build_app_image("v2.0.0", payload={"fwinfo.py": "VERSION = 'v2.0.0'\n"},
                           size=40_000)


@pytest.fixture
def board(tmp_path, v1_image) -> Board:
    flash = tmp_path / "flash.bin"
    create_flash(flash, v1_image)
    fs = tmp_path / "fs"
    fs.mkdir()
    return Board(flash, fs, tmp_path / "state")


@pytest.fixture(scope="session")
def micropython() -> str:
    return find_micropython()
