"""lib/fota/apps.py, record_from: an application job whose record was lost, rebuilt from its
statusDetails: its trial runs (the slot mounted holds the version the job installs) or it is lost."""

from __future__ import annotations

import pytest

from tests.device.mpy import run_json
from tests.device.test_apps_mutants import PRELUDE


@pytest.mark.parametrize("version,want", [
    ("2.0", {"step": "test", "slot": 1}), ("3.0", {"step": "lost", "slot": -1})])
def test_a_lost_record_is_rebuilt_from_the_slot_that_runs(tmp_path, version, want):
    got = run_json(PRELUDE + f"""
apps.save({{"slot": 0, "trial": 1, "left": 0, "versions": ["1.0", "2.0"], "failed": None}})
apps.mounted = 1
print(json.dumps(apps.record_from("j-1", {{"version": {version!r}, "from_version": "1.0"}})))
""", cwd=tmp_path)
    assert got == dict(want, job="j-1", **{"from": -1}, tries=1, old="1.0", new=version, app=True)


def test_a_lost_record_with_no_application_mounted_is_lost(tmp_path):
    got = run_json(PRELUDE + """
apps.mounted = None
print(json.dumps(apps.record_from("j-1", {"version": "none"})))
""", cwd=tmp_path)
    assert got["step"] == "lost" and got["slot"] == -1 and got["old"] == "?"
