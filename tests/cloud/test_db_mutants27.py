"""tools/fotatools/cloud/db.py: adding a thing group says whether it was new (True the first
time, False for a group that already exists, which keeps its creation time)."""

from __future__ import annotations

from pathlib import Path

from fotatools.cloud.db import Database


def test_add_group_is_true_for_a_new_group_only(tmp_path: Path):
    db = Database(tmp_path / "cloud.db")
    try:
        assert db.add_group("fleet", 1000.0) is True
        assert db.add_group("fleet", 2000.0) is False
        assert db.add_group("canary", 3000.0) is True
        assert db.get_group("fleet")["created_at"] == 1000.0
    finally:
        db.close()
