"""tools/fotatools/cloud/store.py, without a server:
- a request that lacks the expiry or the signature, or both, is refused for that reason (as S3
  answers "Query-string authentication requires the Signature, Expires and AWSAccessKeyId
  parameters"), not as a bad signature or a bad expiry;
- the signing secret made on first use is 32 random bytes: an HMAC-SHA256 key no shorter than
  the hash's output (RFC 2104, section 3: "less than L bytes is strongly discouraged"), kept
  (readable by its owner only) and read back the same;
- a store no StoreServer serves yet puts port 0 into its URLs, a port no server can listen on
  (binding port 0 picks a free one), so such a URL reaches nothing; serving it gives its port."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from fotatools.cloud.ca import LocalCA
from fotatools.cloud.store import EXPIRES_PARAM, SIGNATURE_PARAM, ObjectStore, StoreServer

MISSING = "Query-string authentication requires the expiry and signature parameters"


@pytest.fixture()
def store(tmp_path):
    return ObjectStore(tmp_path / "store", b"k" * 32)


def signed(store: ObjectStore) -> dict[str, list[str]]:
    return parse_qs(urlsplit(store.presign("bucket", "fw.bin", 60, now=1000.0)).query)


@pytest.mark.parametrize("keep", [(), (EXPIRES_PARAM,), (SIGNATURE_PARAM,)])
def test_a_request_without_its_expiry_or_signature_is_refused_for_that(store, keep):
    query = {k: v for k, v in signed(store).items() if k in keep}
    assert store.verify("bucket", "fw.bin", query, now=1000.0) == MISSING


@pytest.mark.parametrize("empty", [EXPIRES_PARAM, SIGNATURE_PARAM])
def test_an_empty_expiry_or_signature_is_a_missing_one(store, empty):
    query = {**signed(store), empty: [""]}
    assert store.verify("bucket", "fw.bin", query, now=1000.0) == MISSING


def test_a_request_with_both_is_checked_and_taken(store):
    assert store.verify("bucket", "fw.bin", signed(store), now=1000.0) is None


def test_the_signing_secret_is_32_random_bytes_kept_for_its_owner(tmp_path):
    path = tmp_path / "state" / "store.secret"
    secret = ObjectStore.load_secret(path)
    assert len(secret) == 32 >= hashlib.sha256().digest_size
    assert path.read_text().strip() == secret.hex()
    assert path.stat().st_mode & 0o777 == 0o600
    assert ObjectStore.load_secret(path) == secret
    assert ObjectStore.load_secret(tmp_path / "other.secret") != secret


def test_urls_of_a_store_not_yet_served_name_port_0(tmp_path, store):
    assert urlsplit(store.presign("bucket", "fw.bin", 60)).port == 0
    ca = LocalCA(tmp_path / "ca").ensure()
    cert = ca.issue_server(tmp_path / "srv")
    server = StoreServer(store, cert.cert_pem, cert.key_pem)
    try:
        assert server.port > 0
        assert urlsplit(store.presign("bucket", "fw.bin", 60)).port == server.port
    finally:
        server.httpd.server_close()
