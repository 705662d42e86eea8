"""`fota build NEW.bin --from OLD.bin` and the publishing of delta releases: a detools
sequential patch next to the release, the base named by the SHA-256 esptool reads from the
base image; a document carrying the patch for devices that run the base and the whole image
for the rest (or the patch alone)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import detools
import pytest

from fotatools import cli
from fotatools.delta import base_sha256, load_delta, make_patch, patch_header
from fotatools.release import ImageError
from tests.cli.conftest import unique
from tests.cli.images import app_image, raw_app_image
from tests.cli.test_cli_local import Device, local  # noqa: F401 (the fixture)
from tests.deltaimages import assemble, evolve, segments

OLD = app_image("2.0.0", size=300_000)
NEW = evolve(OLD, "2.0.1")
REL = "micropython-2.0.1"


def build(tmp_path: Path, *args: str, new: bytes = NEW) -> tuple[int, dict]:
    (tmp_path / "old.bin").write_bytes(OLD)
    (tmp_path / "new.bin").write_bytes(new)
    code = cli.main(["build", str(tmp_path / "new.bin"), "--from", str(tmp_path / "old.bin"),
                     "--out", str(tmp_path / "rel"), "--json", *args])
    return code, json.loads((tmp_path / "rel" / f"{REL}.json").read_text())


def apply(old: bytes, patch: bytes) -> bytes:
    out = io.BytesIO()
    detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), out)
    return out.getvalue()


def esptool_validation_hash(path: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "image-info",
                          str(path)], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.lower().startswith("validation hash"))
    return line.split(":", 1)[1].split()[0]


def test_build_from_writes_a_patch_that_makes_the_image(tmp_path):
    code, manifest = build(tmp_path, "--delta-compression", "heatshrink")
    assert code == 0
    d = manifest["delta"]
    patch = (tmp_path / "rel" / d["file"]).read_bytes()
    assert d["file"] == f"{REL}.patch"
    assert apply(OLD, patch) == NEW
    assert (d["size"], d["md5"]) == (len(patch), hashlib.md5(patch).hexdigest())
    assert (d["compression"], d["window_sz2"], d["lookahead_sz2"]) == ("heatshrink", 8, 7)
    assert d["base_version"] == "2.0.0"
    assert d["base_sha256"] == OLD[-32:].hex() == esptool_validation_hash(tmp_path / "old.bin")
    assert patch_header(patch) == ("heatshrink", len(NEW), 8)
    assert len(patch) < len(NEW) // 10
    assert (manifest["size"], manifest["md5"]) == (len(NEW), hashlib.md5(NEW).hexdigest())
    assert load_delta(tmp_path / "rel" / f"{REL}.json", manifest) == tmp_path / "rel" / d["file"]


def with_new_code(image: bytes) -> bytes:
    # A build that adds 74 KB of repetitive new content: heatshrink compresses the patch's
    # extra data, crle (runs only) does not.
    segs = segments(image)
    addr, data = segs[-1]
    segs[-1] = (addr, data[:1000] + b"def handler(msg): return msg.upper()\n" * 2000 + data[1000:])
    return assemble(image[:24], segs)


@pytest.mark.parametrize("new,winner", [(NEW, "crle"), (with_new_code(NEW), "heatshrink")],
                         ids=["small edits", "new code"])
def test_build_from_keeps_the_smaller_of_heatshrink_and_crle(tmp_path, new, winner):
    # The default: crle when little changed (its runs of zero differences beat heatshrink's
    # longest match), heatshrink when new content came in.
    code, manifest = build(tmp_path, new=new)
    assert code == 0
    d = manifest["delta"]
    patch = (tmp_path / "rel" / d["file"]).read_bytes()
    sizes = {c: len(make_patch(OLD, new, c)) for c in ("heatshrink", "crle")}
    assert min(sizes, key=sizes.get) == winner == d["compression"] == patch_header(patch)[0]
    assert len(patch) == sizes[winner] == d["size"]
    assert apply(OLD, patch) == new


@pytest.mark.parametrize("compression", ["crle", "none"])
def test_build_from_with_another_compression(tmp_path, compression):
    code, manifest = build(tmp_path, "--delta-compression", compression)
    assert code == 0
    if compression == "none":  # every byte of the image is in the patch: bigger, not kept
        assert "delta" not in manifest and "delta" in manifest["not_kept"]
        assert len(make_patch(OLD, NEW, "none")) >= len(NEW)
        return
    patch = (tmp_path / "rel" / manifest["delta"]["file"]).read_bytes()
    assert patch_header(patch)[0] == compression == manifest["delta"]["compression"]
    assert apply(OLD, patch) == NEW


@pytest.mark.parametrize("base,message", [
    (b"not an image", "not an ESP32 image"),
    (raw_app_image(hash_appended=False, size=8192), "no appended SHA-256"),
    (NEW, "the base image is the release image itself"),
])
def test_bad_base_is_refused(tmp_path, capsys, base, message):
    (tmp_path / "old.bin").write_bytes(base)
    (tmp_path / "new.bin").write_bytes(NEW)
    code = cli.main(["build", str(tmp_path / "new.bin"), "--from", str(tmp_path / "old.bin"),
                     "--out", str(tmp_path / "rel")])
    assert code == 2
    assert message in capsys.readouterr().err
    if message != "the base image is the release image itself":
        assert not (tmp_path / "rel").exists()  # refused before the release is written


def test_patch_that_changed_is_refused(tmp_path):
    _, manifest = build(tmp_path)
    path = tmp_path / "rel" / manifest["delta"]["file"]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ImageError, match="does not match its manifest"):
        load_delta(tmp_path / "rel" / f"{REL}.json", manifest)


def test_base_sha256_is_the_appended_hash():
    assert base_sha256(OLD) == OLD[-32:].hex() == hashlib.sha256(OLD[:-32]).hexdigest()


def test_publish_sends_the_patch_and_the_image(local, tmp_path):  # noqa: F811
    fota, _ = local
    home = Path(fota.env["FOTA_HOME"])
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "old.bin").write_bytes(OLD)
    (tmp_path / "new.bin").write_bytes(NEW)
    r = fota("build", tmp_path / "new.bin", "--from", tmp_path / "old.bin", "--out",
             tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"), "--json")
    assert r.code == 0, r.err
    dev = Device(home, thing)
    try:
        doc = dev.take_job()["jobDocument"]
        patch, full = dev.download(doc["bc_url"]), dev.download(doc["bc_full"])
    finally:
        dev.close()
    assert (doc["bc_enc"], doc["bc_base"], doc["bc_zsize"]) == ("delta", OLD[-32:].hex(), len(patch))
    assert apply(OLD, patch) == NEW and full == NEW
    assert (doc["bc_size"], doc["bc_crc"]) == (len(NEW), hashlib.md5(NEW).hexdigest())
    # --delta-only: the patch alone; --no-delta: the image alone
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"),
             "--delta-only", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)["document"]
    assert doc["bc_enc"] == "delta" and "bc_full" not in doc and doc["bc_url"].endswith(".patch}")
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"),
             "--no-delta", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)["document"]
    assert "bc_enc" not in doc and doc["bc_url"].endswith(".bin}")


def test_delta_only_needs_a_delta_release(tmp_path, capsys):
    (tmp_path / "new.bin").write_bytes(NEW)
    code = cli.main(["publish", str(tmp_path / "new.bin"), "--thing", "t", "--delta-only"])
    assert code == 2
    assert "--delta-only needs a release with a delta patch" in capsys.readouterr().err


def test_publish_on_aws_uploads_the_patch_and_the_image(fota_aws, moto, tmp_path):
    import boto3

    thing = unique("dev")
    assert fota_aws("provision", thing).code == 0
    (tmp_path / "old.bin").write_bytes(OLD)
    (tmp_path / "new.bin").write_bytes(NEW)
    r = fota_aws("build", tmp_path / "new.bin", "--from", tmp_path / "old.bin", "--out",
                 tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    r = fota_aws("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"),
                 "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    d = manifest["delta"]
    folder = "firmware/micropython/2.0.1/"
    assert out["url"].endswith(f"/{folder}{REL}.bin")
    patch_url = out["url"][:-len(f"{REL}.bin")] + d["file"]
    assert out["document"] == {
        "operation": "fota", "bc_idx": -1, "bc_crc": manifest["md5"], "bc_size": manifest["size"],
        "bc_url": f"${{aws:iot:s3-presigned-url:{patch_url}}}", "version": "2.0.1",
        "bc_enc": "delta", "bc_base": OLD[-32:].hex(), "bc_zsize": d["size"],
        "bc_full": f"${{aws:iot:s3-presigned-url:{out['url']}}}"}
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = fota_aws.env["FOTA_BUCKET"]
    assert apply(OLD, s3.get_object(Bucket=bucket, Key=folder + d["file"])["Body"].read()) == NEW
    assert s3.get_object(Bucket=bucket, Key=f"{folder}{REL}.bin")["Body"].read() == NEW


# two unrelated images of random bytes: a heatshrink patch between them is bigger than the
# new one (crle saves the few hundred bytes of the descriptor's zeros)
NOISE_OLD = raw_app_image("2.0.0", size=100_000, seed=1)
NOISE_NEW = raw_app_image("2.0.1", size=100_000, seed=2)


def test_patch_not_smaller_than_the_image_is_not_kept(tmp_path, capsys):
    (tmp_path / "old.bin").write_bytes(NOISE_OLD)
    (tmp_path / "new.bin").write_bytes(NOISE_NEW)
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / f"{REL}.patch").write_bytes(b"from an earlier build")
    assert cli.main(["build", str(tmp_path / "new.bin"), "--from", str(tmp_path / "old.bin"),
                     "--out", str(tmp_path / "rel"), "--delta-compression", "heatshrink"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "rel" / f"{REL}.json").read_text())
    size = len(make_patch(NOISE_OLD, NOISE_NEW, "heatshrink"))
    assert size >= len(NOISE_NEW)
    why = (f"the patch from 2.0.0 is {size:,} bytes, not fewer than the image's "
           f"{len(NOISE_NEW):,}: the image is sent itself")
    assert manifest["not_kept"] == {"delta": why} and "delta" not in manifest
    assert f"delta: not kept: {why}" in out
    assert not (tmp_path / "rel" / f"{REL}.patch").exists()
    assert load_delta(tmp_path / "rel" / f"{REL}.json", manifest) is None


def test_patch_one_byte_smaller_than_the_image_is_kept(tmp_path, monkeypatch):
    from fotatools import delta

    monkeypatch.setattr(delta, "make_patch", lambda old, new, *a: b"p" * (len(new) - 1))
    code, manifest = build(tmp_path, "--delta-compression", "crle")
    assert code == 0 and manifest["delta"]["size"] == len(NEW) - 1 and "not_kept" not in manifest
    monkeypatch.setattr(delta, "make_patch", lambda old, new, *a: b"p" * len(new))
    code, manifest = build(tmp_path, "--delta-compression", "crle")
    assert code == 0 and "delta" not in manifest and "delta" in manifest["not_kept"]


def test_publish_sends_the_image_of_a_release_whose_patch_was_not_kept(local, tmp_path):  # noqa: F811
    fota, _ = local
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    (tmp_path / "old.bin").write_bytes(NOISE_OLD)
    (tmp_path / "new.bin").write_bytes(NOISE_NEW)
    r = fota("build", tmp_path / "new.bin", "--from", tmp_path / "old.bin", "--out",
             tmp_path / "rel", "--delta-compression", "heatshrink", "--json")
    assert r.code == 0, r.err
    manifest = json.loads(r.out)
    assert "delta" not in manifest and "delta" in manifest["not_kept"]
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"), "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)["document"]
    assert "bc_enc" not in doc and doc["bc_url"].endswith(".bin}")
    r = fota("publish", manifest["manifest"], "--thing", thing, "--job-id", unique("job"),
             "--delta-only")
    assert r.code == 2 and "--delta-only needs a release with a delta patch" in r.err
