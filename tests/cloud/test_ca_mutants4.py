"""tools/fotatools/cloud/ca.py: LocalCA.save (and issue_client through it) takes the folder as a
path string too, and writes the four files there: keys private (0600), certificates 0644."""

from __future__ import annotations

import stat
from pathlib import Path

from fotatools.cloud.ca import LocalCA


def test_save_takes_a_folder_given_as_a_string(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    folder = tmp_path / "out"
    files = ca.issue_client("dev-1", str(folder))
    assert (files.cert_pem, files.key_pem, files.cert_der, files.key_der) == (
        folder / "dev-1.cert.pem", folder / "dev-1.key.pem", folder / "dev-1.cert.der", folder / "dev-1.key.der")
    assert all(isinstance(p, Path) for p in (files.cert_pem, files.key_pem, files.cert_der, files.key_der))
    assert sorted(p.name for p in folder.iterdir()) == ["dev-1.cert.der", "dev-1.cert.pem",
                                                        "dev-1.key.der", "dev-1.key.pem"]
    assert files.cert_pem.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(files.key_pem.stat().st_mode) == stat.S_IMODE(files.key_der.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.cert_pem.stat().st_mode) == stat.S_IMODE(files.cert_der.stat().st_mode) == 0o644
