"""`fota flash` plans run on an emulated board: the esptool steps on its flash file, the plan's
own check as the command it is, and mpremote after the board's first boot (what the reset
after the last esptool step gives a board)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

from emulator import serialtools
from emulator.device import Device

CORRUPTED = "The filesystem appears to be corrupted"


def first_boot(flash: Path, timeout: float = 120, chip: str = "esp32") -> str:
    """Boot once (a board with this chip) and wait until the frozen _boot.py is through:
    main.py ended (a fresh board has none), or inisetup reports the filesystem corrupted (it
    would say so for ever). -> the console."""
    dev = Device(flash, echo=None, chip=chip)
    dev.start(max_boots=1, timeout=timeout)
    try:
        while dev.running and CORRUPTED not in dev.console:
            time.sleep(0.2)
    finally:
        dev.stop()
    return dev.console


def apply(flash: Path, commands: list[list[str]],
          skip: Callable[[list[str]], bool] = lambda cmd: False, chip: str = "esp32") -> str:
    """Run the plan's commands in order (those `skip` names left out); -> the console of the
    board's first boot. Raises what the failing step raises: serialtools.ToolError,
    FlashFSError (mpremote finds no filesystem), subprocess.CalledProcessError (the check)."""
    console = ""
    for cmd in commands:
        if skip(cmd):
            continue
        tool, _ = serialtools.which(cmd)
        if tool == "esptool":
            serialtools.run(flash, cmd, chip)
        elif tool == "mpremote":
            console = first_boot(flash, chip=chip)
            serialtools.run(flash, cmd)
        else:
            subprocess.run(cmd, check=True, capture_output=True, text=True)
    return console


def is_erase(cmd: list[str]) -> bool:
    return "erase-region" in cmd or "erase-flash" in cmd
