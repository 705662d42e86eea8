"""The local backend (tools/fotatools/cloud/client.py) on its own: what it asks the stand-in's
control API for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fotatools.cloud.client import LocalBackend


def test_a_presigned_url_lasts_an_hour_unless_told(tmp_path: Path):
    # an hour: AWS's default for a presigned URL (boto3's generate_presigned_url, `aws s3
    # presign`) and the most a job's presignedUrlConfig.expiresInSec may ask for
    b = LocalBackend(tmp_path, bucket="fw")
    asked: list[tuple[str, Any]] = []

    def call(op: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        asked.append((op, params))
        return {"url": "https://localhost/fw/k"}

    b.call = call  # type: ignore[method-assign]
    assert b.presign("k") == "https://localhost/fw/k"
    b.presign("k", expires_sec=60)
    assert asked == [("Presign", {"bucket": "fw", "key": "k", "expiresInSec": 3600}),
                     ("Presign", {"bucket": "fw", "key": "k", "expiresInSec": 60})]
