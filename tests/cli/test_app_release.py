"""`fota build --app DIR`: an application folder as a ROMFS image and its manifest; the
host's refusals (no entry module, too big for a slot, foreign .mpy files, no version); the
job document `fota publish` makes of it."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fotatools import cli
from fotatools.appimage import build_romfs, describe_romfs, mpy_cross_path, romfs_files
from fotatools.release import (APP_SLOT_SIZE, ImageError, build_app_release, check_app_image,
                               load_release, verify_signature)
from emulator.device import find_micropython

APP = "import helper\n\ndef main():\n    print('hello', helper.N)\n"


def app_folder(root: Path, version: str | None = "1.2.0", **extra: str) -> Path:
    (root / "lib").mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(APP)
    (root / "lib" / "helper.py").write_text("N = 3\n")
    (root / "settings.json").write_text('{"period": 5}\n')
    if version is not None:
        (root / "VERSION").write_text(version + "\n")
    for name, text in extra.items():
        (root / name).write_text(text)
    return root


def test_build_app_json(tmp_path, capsys):
    folder = app_folder(tmp_path / "blinky")
    assert cli.main(["build", "--app", str(folder), "--out", str(tmp_path / "rel"),
                     "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    image = (tmp_path / "rel" / m["file"]).read_bytes()
    assert m["file"] == "blinky-app-1.2.0.romfs" and m["kind"] == "app"
    assert (m["version"], m["size"], m["arch"], m["mpy_version"]) == ("1.2.0", len(image),
                                                                      "xtensawin", 6)
    assert m["md5"] == hashlib.md5(image).hexdigest()
    assert m["sha256"] == hashlib.sha256(image).hexdigest()
    files = romfs_files(image)
    assert sorted(files) == ["VERSION", "app.mpy", "lib/helper.mpy", "settings.json"]
    assert files["VERSION"] == b"1.2.0"
    assert files["settings.json"] == b'{"period": 5}\n'
    assert all(i.version == 6 and i.arch == "none" for i in describe_romfs(image).mpy.values())
    assert load_release(Path(m["manifest"])).manifest["md5"] == m["md5"]
    assert load_release(tmp_path / "rel" / m["file"]).manifest["version"] == "1.2.0"


def test_image_runs_in_micropython(tmp_path):
    """The image, mounted with vfs.VfsRom in the unix port, imports the compiled modules."""
    image = build_romfs(app_folder(tmp_path / "a"))
    (tmp_path / "a.romfs").write_bytes(image)
    code = ("import vfs, sys\nvfs.mount(vfs.VfsRom(open('a.romfs','rb').read()), '/rom')\n"
            "sys.path[:0] = ['/rom', '/rom/lib']\nimport app\napp.main()\n"
            "print(sorted(__import__('os').listdir('/rom')))")
    out = subprocess.run([find_micropython(), "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["hello 3", "['VERSION', 'app.mpy', 'lib', 'settings.json']"]


def test_version_option_wins_and_is_written_in(tmp_path):
    folder = app_folder(tmp_path / "a", version="1.0.0")
    path, m = build_app_release(folder, tmp_path / "o", version="1.0.1")
    assert m["version"] == "1.0.1"
    assert romfs_files((tmp_path / "o" / m["file"]).read_bytes())["VERSION"] == b"1.0.1"


def test_signed_app(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    _, m = build_app_release(app_folder(tmp_path / "a"), tmp_path / "o",
                             sign_key=tmp_path / "k.pem")
    image = (tmp_path / "o" / m["file"]).read_bytes()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    assert verify_signature(image, m["signature"], pub)
    doc = cli.make_document(m, "s3://b/k", -1)
    assert doc["bc_sig"] == m["signature"]["value"] and doc["target"] == "app"


def _native_mpy(tmp_path: Path, arch: str) -> bytes:
    (tmp_path / "n.py").write_text("@micropython.native\ndef f():\n    return 1\n")
    subprocess.run([mpy_cross_path(), f"-march={arch}", "-o", str(tmp_path / "n.mpy"),
                    str(tmp_path / "n.py")], check=True)
    return (tmp_path / "n.mpy").read_bytes()


@pytest.mark.parametrize("case, why", [
    ("no-entry", "has no app.py"),
    ("no-version", "no version"),
    ("too-big", "an application slot holds 131072"),
    ("foreign-native", "native code for armv7m, the board is xtensawin"),
    ("old-mpy", ".mpy version 5"),
    ("syntax", "SyntaxError"),
    ("long-name", "names are at most 64"),
    ("not-a-folder", "application folder not found"),
])
def test_refusals(tmp_path, case, why):
    folder = app_folder(tmp_path / "a")
    if case == "no-entry":
        (folder / "app.py").unlink()
    elif case == "no-version":
        (folder / "VERSION").unlink()
    elif case == "too-big":
        (folder / "blob.bin").write_bytes(bytes(range(256)) * 520)
    elif case == "foreign-native":
        (folder / "fast.mpy").write_bytes(_native_mpy(tmp_path, "armv7m"))
    elif case == "old-mpy":
        (folder / "old.mpy").write_bytes(b"M\x05\x00\x1f" + bytes(20))
    elif case == "syntax":
        (folder / "broken.py").write_text("def f(:\n")
    elif case == "long-name":
        (folder / ("x" * 65 + ".txt")).write_text("")
    elif case == "not-a-folder":
        folder = tmp_path / "missing"
    with pytest.raises(ImageError, match=why.replace("(", r"\(").replace(".", r"\.")):
        build_app_release(folder, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_native_code_for_the_board_is_kept(tmp_path):
    folder = app_folder(tmp_path / "a")
    (folder / "fast.mpy").write_bytes(_native_mpy(tmp_path, "xtensawin"))
    _, m = build_app_release(folder, tmp_path / "o")
    info = describe_romfs((tmp_path / "o" / m["file"]).read_bytes()).mpy["fast.mpy"]
    assert (info.arch, info.version) == ("xtensawin", 6)


def test_not_a_romfs_image_and_tampered_release(tmp_path):
    with pytest.raises(ImageError, match="not a ROMFS image"):
        check_app_image(b"MPY not romfs")
    path, m = build_app_release(app_folder(tmp_path / "a"), tmp_path / "o")
    image = tmp_path / "o" / m["file"]
    image.write_bytes(image.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ImageError, match="does not match its manifest"):
        load_release(path)
    assert len(build_romfs(app_folder(tmp_path / "b"))) < APP_SLOT_SIZE


def test_cli_usage_errors(tmp_path, capsys):
    folder = app_folder(tmp_path / "a")
    (tmp_path / "fw.bin").write_bytes(b"x")
    assert cli.main(["build", str(tmp_path / "fw.bin"), "--app", str(folder)]) == 2
    assert "one of them" in capsys.readouterr().err
    assert cli.main(["build"]) == 2
    (folder / "app.py").unlink()
    assert cli.main(["build", "--app", str(folder), "--out", str(tmp_path / "o")]) != 0
    assert "has no app.py" in capsys.readouterr().err


def test_document_marks_an_application(tmp_path):
    _, m = build_app_release(app_folder(tmp_path / "a"), tmp_path / "o")
    doc = cli.make_document(m, "s3://bucket/apps/a/1.2.0/a-app-1.2.0.romfs", 1)
    assert doc == {"operation": "fota", "bc_idx": 1, "bc_crc": m["md5"], "bc_size": m["size"],
                   "bc_url": "${aws:iot:s3-presigned-url:s3://bucket/apps/a/1.2.0/"
                             "a-app-1.2.0.romfs}",
                   "version": "1.2.0", "target": "app"}


@pytest.mark.parametrize("extra, why", [
    (["--slot", "2"], "bad --slot 2 for an application"),
    (["--protocol", "mqtt"], "an application release goes over https"),
])
def test_publish_refusals(tmp_path, capsys, extra, why):
    path, _ = build_app_release(app_folder(tmp_path / "a"), tmp_path / "o")
    assert cli.main(["publish", str(path), "--thing", "t1", *extra]) == 2
    assert why in capsys.readouterr().err


def test_reader_agrees_with_micropython(tmp_path):
    """romfs_files() lists what MicroPython's own VfsRom shows, byte for byte."""
    folder = app_folder(tmp_path / "a")
    (folder / "lib" / "deep" / "er").mkdir(parents=True)
    (folder / "lib" / "deep" / "er" / "data.bin").write_bytes(bytes(range(256)) * 40)
    (folder / "empty.txt").write_text("")
    image = build_romfs(folder)
    (tmp_path / "a.romfs").write_bytes(image)
    code = """import vfs, os, binascii, hashlib
vfs.mount(vfs.VfsRom(open('a.romfs','rb').read()), '/rom')
def walk(d):
    for name, kind, *_ in os.ilistdir(d):
        p = d + '/' + name
        if kind == 0x4000:
            walk(p)
        else:
            data = open(p, 'rb').read()
            print(p[5:], len(data), binascii.hexlify(hashlib.sha256(data).digest()).decode())
walk('/rom')
"""
    out = subprocess.run([find_micropython(), "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = sorted(tuple(line.split()) for line in out.stdout.splitlines())
    want = sorted((p, str(len(d)), hashlib.sha256(d).hexdigest())
                  for p, d in romfs_files(image).items())
    assert seen == want and len(want) == 6


def test_same_folder_same_image(tmp_path):
    folder = app_folder(tmp_path / "a")
    _, m1 = build_app_release(folder, tmp_path / "o1")
    _, m2 = build_app_release(folder, tmp_path / "o2")
    assert m1["md5"] == m2["md5"]


def test_application_slot_is_half_the_romfs_partition_of_the_table(tmp_path, capsys):
    # a board built with a 512 KB romfs partition has 256 KB application slots
    folder = app_folder(tmp_path / "a")
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 520)  # over 128 KB
    assert cli.main(["build", "--app", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "an application slot holds 131072" in capsys.readouterr().err
    table = tmp_path / "partitions.csv"
    table.write_text((Path(__file__).resolve().parents[2] / "firmware" / "FOTA_ESP32"
                      / "partitions.csv").read_text().replace("0x40000", "0x80000"))
    assert cli.main(["build", "--app", str(folder), "--out", str(tmp_path / "o"),
                     "--partitions", str(table), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["slot_size"] == 0x40000
