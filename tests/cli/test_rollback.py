"""`fota rollback`: an older app image made a release under a newer version.

The image that comes out is checked with esptool's own `image-info` (checksum and validation
hash valid, the new version in its app descriptor); only the descriptor's version field, the
checksum byte and the appended SHA-256 differ from the old image."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fotatools import cli
from fotatools.release import ImageError, inspect_image, verify_signature
from fotatools.rollback import VERSION_OFFSET, rollback_image
from tests.cli.images import app_image, raw_app_image


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([*map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def old(tmp_path):
    path = tmp_path / "old.bin"
    path.write_bytes(app_image("1.0.0", size=64_000))
    return path


@pytest.fixture
def key(tmp_path):
    k = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "fleet.pem"
    path.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return path


def image_info(path) -> str:
    r = subprocess.run([sys.executable, "-m", "esptool", "--chip", "esp32", "image-info",
                        str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.parametrize("make", [app_image, raw_app_image], ids=["emulator", "raw"])
def test_the_rewritten_image_is_valid_for_esptool(tmp_path, make):
    data = make("1.0.0", size=64_000)
    new = rollback_image(data, "1.3.0")
    path = tmp_path / "new.bin"
    path.write_bytes(new)
    info = image_info(path)
    assert "App version: 1.3.0" in info
    assert "(valid)" in info.split("Checksum:")[1].splitlines()[0]
    assert "(valid)" in info.split("Validation hash:")[1].splitlines()[0]
    assert info.split("Validation hash: ")[1].split()[0] == hashlib.sha256(new[:-32]).hexdigest()
    # nothing else moved: the version field, the checksum byte, the digest
    assert len(new) == len(data)
    changed = [i for i in range(len(data)) if data[i] != new[i]]
    end = len(data) - 32
    assert all(VERSION_OFFSET <= i < VERSION_OFFSET + 32 or i == end - 1 or i >= end
               for i in changed)
    old_info = inspect_image(data)
    new_info = inspect_image(new)
    assert (new_info.project, new_info.idf_ver, new_info.elf_sha256, new_info.secure_version,
            new_info.app_date) == (old_info.project, old_info.idf_ver, old_info.elf_sha256,
                                   old_info.secure_version, old_info.app_date)


def test_the_checksum_and_digest_are_made_again(old):
    """Without them the image would not boot: esptool's parser (what inspect_image uses, and
    what the board's bootloader checks) refuses a bare version change."""
    data = bytearray(old.read_bytes())
    data[VERSION_OFFSET:VERSION_OFFSET + 5] = b"1.3.0"
    with pytest.raises(ImageError, match="bad checksum|bad SHA-256"):
        inspect_image(bytes(data))
    inspect_image(rollback_image(old.read_bytes(), "1.3.0"))


@pytest.mark.parametrize("version,ok", [("2." + "0" * 29, True), ("2." + "0" * 30, False),
                                        ("1.0.1", True), ("1.0.0", False), ("0.9", False),
                                        ("v1.1", True), ("1.1-rc1", False)])
def test_the_version_must_be_newer_and_fit(capsys, old, tmp_path, version, ok):
    code, out, err = run(capsys, "rollback", old, "--version", version, "--out", tmp_path / "r")
    if ok:
        assert code == 0, err
        assert f"micropython {version}: the code of 1.0.0" in out
    else:
        assert code == 2 and not out and err.count("\n") == 1, err
        assert not (tmp_path / "r").exists()


def test_a_signed_release_with_what_it_came_from(capsys, old, key, tmp_path):
    code, out, err = run(capsys, "rollback", old, "--version", "1.2.0", "--sign", key,
                         "--out", tmp_path / "r", "--json")
    assert code == 0, err
    m = json.loads(out)
    data = old.read_bytes()
    assert m["version"] == "1.2.0" and "app_version" not in m
    assert m["rollback_of"] == {"version": "1.0.0", "size": len(data),
                                "md5": hashlib.md5(data).hexdigest(),
                                "sha256": hashlib.sha256(data).hexdigest()}
    image = (tmp_path / "r" / m["file"]).read_bytes()
    assert m["sha256"] == hashlib.sha256(image).hexdigest()
    assert verify_signature(image, m["signature"], m["signature"]["public_key"].encode())
    assert m["file"] == "micropython-1.2.0.bin"
    # the release publishes like any other (its manifest loads and checks)
    from fotatools.release import load_release
    path = tmp_path / "r" / "micropython-1.2.0.json"
    assert m.pop("manifest") == str(path) and load_release(path).manifest == m
    # and a rollback release can itself be rolled back from: its manifest as OLD
    code, out, err = run(capsys, "rollback", path, "--version", "1.2.1", "--out",
                         tmp_path / "r2", "--json")
    assert code == 0, err
    assert json.loads(out)["rollback_of"]["version"] == "1.2.0"


def test_unsigned_says_so(capsys, old, tmp_path):
    code, out, _ = run(capsys, "rollback", old, "--version", "1.2.0", "--out", tmp_path / "r")
    assert code == 0 and "NOT signed (boards with a signer key refuse it" in out


@pytest.mark.parametrize("setup,args,error", [
    ("missing", [], "firmware image not found"),
    ("trailing", [], "unexpected bytes after the image's SHA-256"),
    ("mcuboot", [], "not"),
    (None, ["--rate", "1/min"], "--rate goes with --thing or --group"),
    (None, ["--canary", "1"], "--canary goes with --thing or --group"),
    (None, ["--watch"], "--watch goes with --thing or --group"),
    (None, ["--thing", "t", "--rate-factor", "2"], "--rate-factor goes with --rate-base"),
    (None, ["--sign", "nokey.pem"], "signing key not found"),
])
def test_bad_input_exits_2_and_writes_nothing(capsys, old, tmp_path, setup, args, error):
    if setup == "missing":
        old = tmp_path / "none.bin"
    elif setup == "trailing":
        old.write_bytes(old.read_bytes() + b"\0" * 16)
    elif setup == "mcuboot":
        old.write_bytes(b"\x3d\xb8\xf3\x96" + b"\0" * 60)
    code, out, err = run(capsys, "rollback", old, "--version", "1.2.0", "--out",
                         tmp_path / "r", *args)
    assert code == 2 and not out and error in err, err
    assert not (tmp_path / "r").exists()


def test_rollback_options_are_its_own(capsys):
    with pytest.raises(SystemExit):
        cli.main(["rollback", "--help"])
    text = capsys.readouterr().out
    for option in ("--version", "--sign", "--thing", "--canary", "--rate-base", "--timeout"):
        assert option in text
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    text = capsys.readouterr().out
    for option in ("--canary", "--rate-base", "--rate-factor", "--thing"):
        assert option not in text
    for command in ("status", "cancel", "group"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert "--canary" not in text and "--rate-base" not in text
