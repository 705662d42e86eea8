"""`fota build` of MCUboot images and plain files, `--file` specs, the afr_ota document of several
files, and `provision --signer` with a code-signing certificate."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fotatools import cli
from fotatools.ota import OtaFile, document, load_files, parse_spec, sign_files
from fotatools.provisioning import signer_der
from fotatools.release import ImageError, load_release, verify_signature
from tests.cli.conftest import ROOT
from tests.cli.images import app_image

IMGTOOL = str(Path(__import__("sys").executable).parent / "imgtool")


def mcuboot_image(folder: Path, version: str, size: int = 6000, key: Path | None = None,
                  name: str = "secondary.signed.bin") -> Path:
    """An MCUboot image as imgtool signs it (ECDSA P-256 key, 0x200-byte header)."""
    body = folder / f"body-{version}.bin"
    body.write_bytes(hashlib.sha256(version.encode()).digest() * (size // 32))
    if key is None:
        key = folder / "mcuboot.pem"
        if not key.exists():
            subprocess.run([IMGTOOL, "keygen", "-k", str(key), "-t", "ecdsa-p256"], check=True)
    out = folder / name
    subprocess.run([IMGTOOL, "sign", "-k", str(key), "--header-size", "0x200", "--pad-header",
                    "--align", "4", "--version", version, "--slot-size", "0x20000", str(body),
                    str(out)], check=True, capture_output=True)
    return out


def signing_key(folder: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / "signer.key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path, key


def code_signing_cert(folder: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    """A self-signed code-signing certificate, as one imported into ACM for AWS code signing."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fota code signing")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    path = folder / "signer.crt.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_build_mcuboot_image_takes_the_header_version(tmp_path, capsys):
    img = mcuboot_image(tmp_path, "1.2.3+4")
    info = subprocess.run([IMGTOOL, "verify", str(img)], capture_output=True, text=True,
                          check=True).stdout
    key, _ = signing_key(tmp_path)
    assert cli.main(["build", str(img), "--out", str(tmp_path / "rel"), "--sign", str(key),
                     "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["kind"] == "mcuboot" and m["version"] == "1.2.3+4"
    assert "Image version: 1.2.3+4" in info
    assert f"Image digest: {m['mcuboot']['hash']}" in info
    assert m["mcuboot"]["header_size"] == 0x200
    data = img.read_bytes()
    assert m["size"] == len(data) and m["sha256"] == hashlib.sha256(data).hexdigest()
    assert verify_signature(data, m["signature"], m["signature"]["public_key"].encode())
    assert Path(m["manifest"]).name == "secondary-1.2.3+4.json"
    rel = load_release(Path(m["manifest"]), kinds=("mcuboot",))
    assert rel.image.read_bytes() == data
    for single in (Path(m["manifest"]), img):  # not a single RELEASE: that is the ESP32's app
        with pytest.raises(ImageError, match="holds a mcuboot file, not esp32-app"):
            load_release(single)
    # the version is the header's: another one is refused
    assert cli.main(["build", str(img), "--version", "1.2.4", "--out",
                     str(tmp_path / "o2")]) == 2
    assert "ih_ver" in capsys.readouterr().err


def test_build_checks_the_mcuboot_signature_with_a_key(tmp_path, capsys):
    img = mcuboot_image(tmp_path, "1.0.0+2")  # signed with tmp_path/mcuboot.pem
    pub = tmp_path / "mcuboot.pub.pem"
    subprocess.run([IMGTOOL, "getpub", "-k", str(tmp_path / "mcuboot.pem"), "-e", "pem"],
                   check=True, stdout=pub.open("wb"))
    for key in (tmp_path / "mcuboot.pem", pub):
        assert cli.main(["build", str(img), "--mcuboot-key", str(key), "--out",
                         str(tmp_path / "ok"), "--json"]) == 0, capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["version"] == "1.0.0+2"
    other = tmp_path / "other.pem"
    subprocess.run([IMGTOOL, "keygen", "-k", str(other), "-t", "ecdsa-p256"], check=True)
    assert cli.main(["build", str(img), "--mcuboot-key", str(other), "--out",
                     str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert "not signed with the MCUboot key" in err and "would refuse it" in err
    (tmp_path / "junk.pem").write_text("junk")
    assert cli.main(["build", str(img), "--mcuboot-key", str(tmp_path / "junk.pem"),
                     "--out", str(tmp_path / "no")]) == 2
    assert "not an MCUboot key imgtool takes" in capsys.readouterr().err
    app = tmp_path / "fw.bin"
    app.write_bytes(app_image("1.0.0"))
    assert cli.main(["build", str(app), "--mcuboot-key", str(other), "--out",
                     str(tmp_path / "no")]) == 2
    assert "--mcuboot-key goes with one" in capsys.readouterr().err


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0xFF
    return bytes(b)


@pytest.mark.parametrize("case,change,reason", [
    ("body", lambda d: _flip(d, 0x300), "SHA-256 TLV does not match"),
    ("version", lambda d: _flip(d, 20), "SHA-256 TLV does not match"),
    ("truncated", lambda d: d[:0x400], "truncated or malformed MCUboot image"),
    ("no-tlvs", lambda d: d[:-200], "truncated or malformed MCUboot image"),
    ("header-only", lambda d: d[:20], "too short for an MCUboot image"),
])
def test_build_refuses_bad_mcuboot_image(tmp_path, capsys, case, change, reason):
    img = mcuboot_image(tmp_path, "2.0.0")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(change(img.read_bytes()))
    assert cli.main(["build", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fota: error: ") and reason in err and err.count("\n") == 1


def test_build_plain_file_needs_a_version(tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text('{"interval": 30}\n')
    assert cli.main(["build", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "give it one with --version" in capsys.readouterr().err
    assert cli.main(["build", str(cfg), "--version", "7", "--out", str(tmp_path / "o"),
                     "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["kind"], m["version"], m["file"]) == ("file", "7", "config-7.data.json")
    assert m["sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert load_release(Path(m["manifest"]), kinds=("file",)).manifest["version"] == "7"
    # a plain-file manifest is not an app release
    with pytest.raises(ImageError, match="holds a file file, not esp32-app .* --file ID=PATH"):
        load_release(Path(m["manifest"]))


@pytest.mark.parametrize("spec,reason", [
    ("1", "ID=PATH"), ("x=a.bin", "ID=PATH"), ("256=a.bin", "the ids are 0..255"),
    ("1=a.bin:", "device path"), ("1=a.bin:/sd/../x", "device path"),
])
def test_bad_file_specs(spec, reason):
    with pytest.raises(ImageError, match=reason):
        parse_spec(spec)


def test_file_spec_parts():
    assert parse_spec("2=config.bin:/sd/config.bin") == (2, Path("config.bin"), "/sd/config.bin")
    assert parse_spec("0=build/fw.json") == (0, Path("build/fw.json"), None)


def test_files_checked_signed_and_in_the_document(tmp_path):
    key, private = signing_key(tmp_path)
    app = tmp_path / "micropython.bin"
    app.write_bytes(app_image("1.2.0", size=20_000))
    sec = mcuboot_image(tmp_path, "0.9.2")
    cfg = tmp_path / "config.bin"
    cfg.write_bytes(b"interval=30\n")
    specs = [f"2={cfg}:/sd/config.bin", f"0={app}", f"1={sec}"]
    files = load_files(specs)
    assert [f.file_id for f in files] == [0, 1, 2]
    assert [f.kind for f in files] == ["esp32-app", "mcuboot", "file"]
    assert [f.version for f in files][:2] == ["1.2.0", "0.9.2+0"]
    with pytest.raises(ImageError, match="not signed: give --sign"):
        sign_files(files, None)
    sign_files(files, key.read_bytes())
    for f in files:
        f.url = f"https://s3.example/{f.path.name}"
    doc = document(files, "mqtt", "ota-7")
    assert list(doc) == ["afr_ota"]
    ota = doc["afr_ota"]
    assert ota["protocols"] == ["MQTT"] and ota["streamname"] == "ota-7"
    assert [e["fileid"] for e in ota["files"]] == [0, 1, 2]
    assert [e["filepath"] for e in ota["files"]] == ["micropython.bin", "secondary.signed.bin",
                                                     "/sd/config.bin"]
    pub = private.public_key()
    for e, f in zip(ota["files"], files):
        assert set(e) == {"fileid", "filepath", "filesize", "certfile", "sig-sha256-ecdsa",
                          "fileType"}
        assert e["filesize"] == f.path.stat().st_size and e["certfile"] == "certs/signer.der"
        pub.verify(base64.b64decode(e["sig-sha256-ecdsa"]), f.path.read_bytes(),
                   ec.ECDSA(hashes.SHA256()))
    http = document(files, "http", "ota-7")["afr_ota"]
    assert http["protocols"] == ["HTTP"] and "streamname" not in http
    assert http["files"][1]["update_data_url"] == \
        "${aws:iot:s3-presigned-url:https://s3.example/secondary.signed.bin}"
    assert http["files"][1]["auth_scheme"] == "aws.s3.presigned"


@pytest.mark.parametrize("specs,reason", [
    (["1=A", "1=B"], "file id 1 is given twice"),
    (["0=B"], "file id 0 is the ESP32's own app image"),
    (["1=B", "2=B"], "two files would be stored as"),
    (["1=missing.bin"], "not found"),
])
def test_bad_file_sets(tmp_path, monkeypatch, specs, reason):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "A").write_bytes(app_image("1.0.0"))
    mcuboot_image(tmp_path, "1.0.0", name="B")
    with pytest.raises(ImageError, match=reason):
        load_files(specs)


def test_manifest_signature_is_used_without_sign(tmp_path, capsys):
    key, _ = signing_key(tmp_path)
    sec = mcuboot_image(tmp_path, "3.1.0")
    assert cli.main(["build", str(sec), "--sign", str(key), "--out", str(tmp_path / "r"),
                     "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    files = load_files([f"1={m['manifest']}"])
    sign_files(files, None)
    assert files[0].signature == m["signature"]["value"]
    assert isinstance(files[0], OtaFile) and files[0].filepath == "secondary-3.1.0+0.bin"


def test_signer_from_a_code_signing_certificate(tmp_path):
    key, private = signing_key(tmp_path)
    cert = code_signing_cert(tmp_path, private)
    der = signer_der(cert.read_bytes())
    assert der == signer_der(key.read_bytes())
    assert der == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    bad = cert.read_bytes().replace(b"MII", b"MIX", 1)
    with pytest.raises(ValueError, match="not a PEM certificate"):
        signer_der(bad)
    other = ec.generate_private_key(ec.SECP384R1())
    cert384 = code_signing_cert(tmp_path, other)
    with pytest.raises(ValueError, match="P-256"):
        signer_der(cert384.read_bytes())


def test_publish_usage_errors(tmp_path, capsys):
    app = tmp_path / "fw.bin"
    app.write_bytes(app_image("1.0.0"))
    cases = [
        (["publish", "--thing", "t"], "give the RELEASE"),
        (["publish", str(app), "--file", f"0={app}", "--thing", "t"], "not both"),
        (["publish", str(app), "--sign", "k.pem", "--thing", "t"], "--sign goes with --file"),
        (["publish", "--file", f"0={app}", "--slot", "1", "--thing", "t"], "--slot goes with"),
        (["publish", "--file", "9", "--thing", "t"], "bad --file"),
    ]
    for argv, reason in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert reason in err and err.count("\n") == 1, (argv, err)


def test_docs_show_the_document_publish_makes():
    text = (ROOT / "docs" / "job-documents.md").read_text()
    start = text.index('{"afr_ota": {"protocols": ["MQTT"]')
    shown = json.loads(text[start:text.index("```", start)])
    files = shown["afr_ota"]["files"]
    assert [set(f) for f in files] == [{"fileid", "filepath", "filesize", "certfile",
                                        "sig-sha256-ecdsa", "fileType"}] * 3
