"""tools/fotatools/cloud/ca.py writes into folders that do not exist yet, however deep: the
CA's own folder, an issued certificate's folder, a revocation list's folder (each file's
missing parents are made)."""

from __future__ import annotations

from fotatools.cloud.ca import LocalCA


def test_every_file_goes_into_a_folder_made_with_its_missing_parents(tmp_path):
    ca = LocalCA(tmp_path / "a" / "b" / "ca").ensure()
    assert ca.cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert ca.key_path.exists() and ca.cert_der_path.exists()
    files = ca.issue_client("dev-1", tmp_path / "c" / "d" / "things")
    assert files.cert_pem.parent == tmp_path / "c" / "d" / "things" and files.key_der.exists()
    crl = ca.write_crl(tmp_path / "e" / "f" / "crl.pem", [12345])
    assert crl.read_bytes().startswith(b"-----BEGIN X509 CRL-----")
