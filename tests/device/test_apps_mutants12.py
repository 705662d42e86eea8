"""lib/fota/apps.py, confirm: only the application on its trial, running, is confirmed. An
application that calls fota.confirm() while another slot waits for its trial boot (written by a
job, before the reset), or a board that runs no application, leaves the record as it is: the
trial still comes."""

from __future__ import annotations

import json

import pytest

from tests.device.mpy import run_json
from tests.device.test_apps_mutants import PRELUDE
from tests.device.test_bounds import cases

CONFIRMED = {"slot": 0, "trial": None, "left": 0, "versions": ["1.0", None], "failed": None}
PENDING = {"slot": 0, "trial": 1, "left": 1, "versions": ["1.0", "2.0"], "failed": None}
RUNNING = dict(PENDING, left=0)  # its trial boot has come: slot 1 runs
NONE = {"slot": None, "trial": None, "left": 0, "versions": [None, None], "failed": None}


@pytest.mark.parametrize("rec,mounted,want", cases([
    ("the-trial-runs", RUNNING, 1, dict(RUNNING, slot=1, trial=None)),
    ("a-trial-waits-for-its-boot", PENDING, 0, PENDING),
    ("no-trial", CONFIRMED, 0, CONFIRMED),
    ("no-application", NONE, None, NONE)]))
def test_confirm_confirms_only_the_application_on_its_trial(rec, mounted, want, tmp_path):
    (tmp_path / "apps.json").write_text(json.dumps(rec))
    got = run_json(PRELUDE + f"""
apps.mounted = {mounted!r}
apps.confirm()
print(json.dumps(apps.load()))
""", cwd=tmp_path)
    assert got == want
