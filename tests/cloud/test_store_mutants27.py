"""tools/fotatools/cloud/store.py, without a server: `exists` is True for a stored object only
(not for a missing key, a key in another bucket, or a folder that holds other objects)."""

from __future__ import annotations

from pathlib import Path

from fotatools.cloud.store import ObjectStore


def test_exists_is_true_for_a_stored_object_only(tmp_path: Path):
    store = ObjectStore(tmp_path / "store", b"k" * 32)
    assert store.exists("bucket", "fw/app.bin") is False
    store.put("bucket", "fw/app.bin", b"image")
    assert store.exists("bucket", "fw/app.bin") is True
    assert store.exists("bucket", "fw/other.bin") is False
    assert store.exists("other", "fw/app.bin") is False
    assert store.exists("bucket", "fw") is False  # a folder of objects, no object itself
