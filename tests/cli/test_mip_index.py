"""`fota mip-index OUT`: what it refuses (one line, exit 2, nothing written) and how a version,
once in an index, is kept. What the index holds and how mip installs from it:
tests/firmware/test_mip_package.py."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from fotatools import cli
from fotatools.appimage import mpy_cross_path

ROOT = Path(__file__).resolve().parents[2]
UMQTT = ROOT / ".deps" / "umqtt" / "simple.py"
pytestmark = pytest.mark.skipif(not UMQTT.exists(), reason="umqtt.simple not fetched (make setup)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what the index is built from: package.json, lib/fota, .deps/umqtt."""
    p = tmp_path / "project"
    p.mkdir()
    shutil.copy(ROOT / "package.json", p / "package.json")
    shutil.copytree(ROOT / "lib", p / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".deps" / "umqtt", p / ".deps" / "umqtt")
    return p


def fota(*argv: str) -> int:
    try:
        return cli.main(["mip-index", *argv])
    except SystemExit as e:  # argparse errors
        return int(e.code or 0)


def edit_package(project: Path, change) -> None:
    meta = json.loads((project / "package.json").read_text())
    change(meta)
    (project / "package.json").write_text(json.dumps(meta))


def wrapper(tmp: Path, body: str) -> str:
    """An mpy-cross that is the real one with something changed (a Python script)."""
    path = tmp / "mpy-cross-wrapped"
    path.write_text(f"#!{sys.executable}\nimport subprocess, sys\nREAL = {mpy_cross_path()!r}\n" + body)
    path.chmod(0o755)
    return str(path)


NATIVE = "@micropython.native\ndef f():\n    return 1\n"
# each: what is done to the project copy (or the option given), and the message expected
CASES = {
    "no-package-json": (lambda p, t: (p / "package.json").unlink(), "package.json not found"),
    "package-json-not-json": (lambda p, t: (p / "package.json").write_text("{"), "not JSON"),
    "version-missing": (lambda p, t: edit_package(p, lambda m: m.pop("version")), "bad version"),
    "version-latest": (lambda p, t: edit_package(p, lambda m: m.update(version="latest")), "bad version"),
    "version-slash": (lambda p, t: edit_package(p, lambda m: m.update(version="1/2")), "bad version"),
    "version-33": (lambda p, t: edit_package(p, lambda m: m.update(version="1" * 33)), "bad version"),
    "url-entry": (lambda p, t: edit_package(p, lambda m: m["urls"].append("fota/x.py")), "bad entry"),
    "url-remote": (lambda p, t: edit_package(p, lambda m: m["urls"].append(
        ["fota/x.py", "github:someone/repo/x.py"])), "from this repository"),
    "url-other-package": (lambda p, t: edit_package(p, lambda m: m["urls"].append(
        ["ota/x.py", "lib/fota/core.py"])), "of the fota package"),
    "url-not-py": (lambda p, t: edit_package(p, lambda m: m["urls"].append(
        ["fota/x.txt", "package.json"])), "of the fota package"),
    "url-up": (lambda p, t: edit_package(p, lambda m: m["urls"].append(
        ["fota/../x.py", "lib/fota/core.py"])), "of the fota package"),
    "source-missing": (lambda p, t: (p / "lib" / "fota" / "smp.py").unlink(), "lib/fota/smp.py not found"),
    "no-files": (lambda p, t: edit_package(p, lambda m: m.update(urls=[])), "lists no files"),
    "other-dep": (lambda p, t: edit_package(p, lambda m: m["deps"].append(["requests", "latest"])),
                  "depends on requests"),
    "umqtt-missing": (lambda p, t: (p / ".deps" / "umqtt" / "simple.py").unlink(), "run `make setup`"),
    "syntax-error": (lambda p, t: (p / "lib" / "fota" / "clock.py").write_text("def (:\n"),
                     "fota/clock.py: SyntaxError"),
    # plain mpy-cross refuses native code (no -march); one that emits it is refused too
    "native-no-arch": (lambda p, t: (p / "lib" / "fota" / "clock.py").write_text(NATIVE),
                       "fota/clock.py: SyntaxError: invalid arch"),
    "native-code": (lambda p, t: ((p / "lib" / "fota" / "clock.py").write_text(NATIVE), wrapper(t, (
        "sys.exit(subprocess.call([REAL, '-march=x64'] + sys.argv[1:]))\n")))[1],
        "fota/clock.py: holds machine code"),
    "mpy-cross-missing": (lambda p, t: str(t / "no-such-mpy-cross"), "mpy-cross not found"),
    "mpy-cross-silent": (lambda p, t: wrapper(t, "sys.exit(0)\n"), "does not say which .mpy version"),
    "mpy-cross-other-version": (lambda p, t: wrapper(t, (
        "if sys.argv[1:] == ['--version']:\n    print('mpy-cross emitting mpy v7.0')\n"
        "else:\n    sys.exit(subprocess.call([REAL] + sys.argv[1:]))\n")), "wrote no .mpy of version 7"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_project_exits_2_and_writes_nothing(case: str, project: Path, tmp_path: Path, capsys):
    change, message = CASES[case]
    tools = tmp_path / "tools"
    tools.mkdir()
    compiler = change(project, tools)
    out = tmp_path / "out"
    extra = ["--mpy-cross", compiler] if isinstance(compiler, str) else []
    assert fota(str(out), "--project", str(project), *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("fota: error: ") and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_out_that_is_a_file_is_refused(project: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    out.write_text("x")
    assert fota(str(out), "--project", str(project)) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert out.read_text() == "x"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != "index.json"}


def test_a_version_once_in_the_index_is_kept(project: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert fota(str(out), "--project", str(project)) == 0
    first = snapshot(out)
    assert fota(str(out), "--project", str(project)) == 0  # the same files: nothing changes
    assert snapshot(out) == first
    # another file in the same version: refused, the index as it was
    core = project / "lib" / "fota" / "core.py"
    core.write_text(core.read_text() + "\nX = 1\n")
    capsys.readouterr()
    assert fota(str(out), "--project", str(project)) == 2
    assert "already lists other files for fota 0.1.0" in capsys.readouterr().err
    assert snapshot(out) == first
    # a new version: added, the old one kept, latest follows
    edit_package(project, lambda m: m.update(version="0.1.1"))
    assert fota(str(out), "--project", str(project)) == 0
    after = snapshot(out)
    for form in ("6", "py"):
        old = f"package/{form}/fota/0.1.0.json"
        assert after[old] == first[old]
        assert after[f"package/{form}/fota/latest.json"] == after[f"package/{form}/fota/0.1.1.json"]
        assert json.loads(after[f"package/{form}/fota/0.1.1.json"])["version"] == "0.1.1"
    index = json.loads((out / "index.json").read_text())
    (fota_entry,) = [p for p in index["packages"] if p["name"] == "fota"]
    assert fota_entry["version"] == "0.1.1"
    assert fota_entry["versions"] == {"6": ["0.1.0", "0.1.1"], "py": ["0.1.0", "0.1.1"]}
    # --replace rewrites a version that is there
    edit_package(project, lambda m: m.update(version="0.1.0"))
    assert fota(str(out), "--project", str(project), "--replace") == 0
    assert snapshot(out)["package/6/fota/0.1.0.json"] != first["package/6/fota/0.1.0.json"]


def test_summary_as_json(project: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert fota(str(out), "--project", str(project), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mpy_version"] == "6.3"
    fota_pkg, umqtt = summary["packages"]
    assert (fota_pkg["name"], fota_pkg["files"]) == ("fota", len(list((project / "lib" / "fota").glob("*.py"))))
    assert fota_pkg["py_bytes"] == sum(p.stat().st_size for p in (project / "lib" / "fota").glob("*.py"))
    assert 0 < fota_pkg["mpy_bytes"] < fota_pkg["py_bytes"]
    assert umqtt["name"] == "umqtt.simple"


def test_two_files_of_one_hash_prefix_are_refused(tmp_path: Path, monkeypatch):
    from fotatools import mipindex

    mipindex.put_file(tmp_path, "abcd1234", b"one")
    mipindex.put_file(tmp_path, "abcd1234", b"one")  # the same file again: fine
    with pytest.raises(mipindex.MipIndexError, match="same hash prefix abcd1234"):
        mipindex.put_file(tmp_path, "abcd1234", b"two")
    assert (tmp_path / "file" / "ab" / "abcd1234").read_bytes() == b"one"
    # within one build, before anything is written
    monkeypatch.setattr(mipindex, "short_hash", lambda data: "abcd1234")
    built = mipindex.Built("fota", "0.1.0", {}, {})
    assert mipindex.keep(built, b"one") == mipindex.keep(built, b"one") == "abcd1234"
    with pytest.raises(mipindex.MipIndexError, match="same hash prefix abcd1234"):
        mipindex.keep(built, b"two")
