"""The two ways mip installs the library, each checked with MicroPython's own `mip` (unix port)
fetching over HTTP from a server on 127.0.0.1, and with mpremote's:
- the repository's package.json (glenn20's micropython-esp32-ota convention):
  `mpremote mip install github:OWNER/REPO` installs lib/fota as .py source, and umqtt.simple
  from the default index (micropython-lib's);
- the index `fota mip-index OUT` builds (micropython-lib's convention, mipsite.py):
  `mpremote mip install --index URL fota` installs .mpy compiled for the board's bytecode
  version, or with --no-mpy (mip's mpy=False) the .py source, and umqtt.simple from the same
  index."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fotatools import __version__
from fotatools.deps import UMQTT_VERSION
from tests.device.mpy import micropython
from tests.firmware.mipsite import (PACKAGE, ROOT, UMQTT, board_mpy_version, build_index,
                                    installed, mip_install, serve)

needs_umqtt = pytest.mark.skipif(not UMQTT.exists(), reason="umqtt.simple not fetched (make setup)")


def test_package_lists_every_library_file():
    urls = PACKAGE["urls"]
    assert sorted(dest for dest, _ in urls) == sorted(f"fota/{p.name}" for p in (ROOT / "lib" / "fota").glob("*.py"))
    for dest, src in urls:
        assert src == f"lib/{dest}"  # relative to package.json: the repository's lib/
        assert (ROOT / src).is_file(), src
    assert PACKAGE["deps"] == [["umqtt.simple", "latest"]]
    assert PACKAGE["version"] == __version__


# -- the repository's package.json (github:OWNER/REPO) ------------------------------------------
@pytest.fixture
def repo_site(tmp_path: Path):
    """A web root with the repository (package.json, lib/) and, as micropython-lib's index would
    serve it, umqtt.simple; yields its base URL."""
    www = tmp_path / "www"
    (www / "repo").mkdir(parents=True)
    shutil.copy(ROOT / "package.json", www / "repo" / "package.json")
    shutil.copytree(ROOT / "lib", www / "repo" / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    data = UMQTT.read_bytes()
    short = hashlib.sha256(data).hexdigest()[:8]
    (www / "index" / "file" / short[:2]).mkdir(parents=True)
    (www / "index" / "file" / short[:2] / short).write_bytes(data)
    listing = json.dumps({"hashes": [["umqtt/simple.py", short]], "version": "1.0"})
    for mpy in (board_mpy_version(), "py"):
        (www / "index" / "package" / mpy / "umqtt.simple").mkdir(parents=True)
        (www / "index" / "package" / mpy / "umqtt.simple" / "latest.json").write_text(listing)
    with serve(www) as url:
        yield url


@needs_umqtt
def test_mip_installs_the_library_and_umqtt(repo_site: str, tmp_path: Path):
    target = tmp_path / "board" / "lib"
    target.mkdir(parents=True)
    r = mip_install(f"{repo_site}/repo/package.json", f"{repo_site}/index", target)
    assert r.returncode == 0 and "Done" in r.stdout, r.stdout + r.stderr
    for dest, src in PACKAGE["urls"]:
        assert (target / dest).read_bytes() == (ROOT / src).read_bytes(), dest
    assert (target / "umqtt" / "simple.py").read_bytes() == UMQTT.read_bytes()
    # what was installed imports from there (fota.plan needs nothing of a board)
    out = subprocess.run([micropython(), "-c", "import fota.plan, umqtt.simple; print('ok')"],
                         capture_output=True, text=True, timeout=30, env={"MICROPYPATH": str(target)})
    assert out.stdout.strip() == "ok", out.stdout + out.stderr


# -- the index of `fota mip-index` ----------------------------------------------------------------
@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index(tmp_path_factory.mktemp("mip") / "index")


@pytest.fixture(scope="module")
def index_url(index: Path):
    with serve(index) as url:
        yield url


def listing(index: Path, form: str, name: str, version: str = "latest") -> dict:
    return json.loads((index / "package" / form / name / f"{version}.json").read_text())


def stored(index: Path, short: str) -> bytes:
    data = (index / "file" / short[:2] / short).read_bytes()
    assert hashlib.sha256(data).hexdigest().startswith(short) and len(short) == 8
    return data


@needs_umqtt
def test_index_holds_both_forms_of_the_package_and_umqtt(index: Path):
    mpy = board_mpy_version()
    assert mpy == "6"  # MicroPython 1.29 reads bytecode v6; mip asks for package/6/...
    assert sorted(p.name for p in (index / "package").iterdir()) == [mpy, "py"]
    for form in (mpy, "py"):
        assert listing(index, form, "fota") == listing(index, form, "fota", __version__)
        assert listing(index, form, "umqtt.simple") == listing(index, form, "umqtt.simple", UMQTT_VERSION)
    compiled, source = listing(index, mpy, "fota"), listing(index, "py", "fota")
    for doc in (compiled, source):
        assert doc["deps"] == [["umqtt.simple", UMQTT_VERSION]]  # the one this index holds
        assert doc["version"] == __version__
    assert [p for p, _ in source["hashes"]] == [dest for dest, _ in PACKAGE["urls"]]
    assert [p for p, _ in compiled["hashes"]] == [dest[:-3] + ".mpy" for dest, _ in PACKAGE["urls"]]
    for (dest, src), (_, h) in zip(PACKAGE["urls"], source["hashes"]):
        assert stored(index, h) == (ROOT / src).read_bytes(), dest
    for path, h in compiled["hashes"]:
        data = stored(index, h)
        # .mpy header: "M", bytecode v6, no machine code (arch 0: loads on every port)
        assert data[:2] == b"M\x06" and data[2] >> 2 == 0, path
        assert path[:-4].encode() + b".py" in data[:64], path  # the source name tracebacks show
    assert [p for p, _ in listing(index, mpy, "umqtt.simple")["hashes"]] == ["umqtt/simple.mpy"]
    (_, h), = listing(index, "py", "umqtt.simple")["hashes"]
    assert stored(index, h) == UMQTT.read_bytes()
    packages = {p["name"]: p for p in json.loads((index / "index.json").read_text())["packages"]}
    assert packages["fota"]["versions"] == {mpy: [__version__], "py": [__version__]}


@needs_umqtt
@pytest.mark.parametrize("form", ["mpy", "py"])
def test_mip_installs_the_package_from_the_index(index_url: str, tmp_path: Path, form: str):
    target = installed(index_url, tmp_path / "lib", **({} if form == "mpy" else {"mpy": False}))
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    want = [dest[:-2] + form for dest, _ in PACKAGE["urls"]] + [f"umqtt/simple.{form}"]
    assert files == sorted(want)
    if form == "py":
        for dest, src in PACKAGE["urls"]:
            assert (target / dest).read_bytes() == (ROOT / src).read_bytes(), dest
    out = subprocess.run([micropython(), "-c", "import fota.plan, umqtt.simple; print(fota.plan.__file__)"],
                         capture_output=True, text=True, timeout=30, env={"MICROPYPATH": str(target)})
    assert out.stdout.strip() == f"{target}/fota/plan.{form}", out.stdout + out.stderr


@needs_umqtt
def test_mip_installs_a_version_of_the_index(index_url: str, tmp_path: Path):
    target = installed(index_url, tmp_path / "lib", version=__version__)
    assert (target / "fota" / "__init__.mpy").is_file() and (target / "umqtt" / "simple.mpy").is_file()
    r = mip_install("fota", index_url, tmp_path / "other", version="0.0.0-none")
    assert "Package not found" in r.stdout and "Done" not in r.stdout, r.stdout


class FolderBoard:
    """What mpremote's mip asks of a board (mpremote.transport), on a folder: files go into it,
    and `sys.implementation._mpy` is asked of the unix port."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def exec(self, code: str) -> None:
        assert code == "import sys", code

    def eval(self, expr: str) -> object:
        out = subprocess.run([micropython(), "-c", f"import sys; print(repr({expr}))"],
                             capture_output=True, text=True, timeout=30, check=True)
        return eval(out.stdout)  # noqa: S307 (a number from our own interpreter)

    def fs_exists(self, path: str) -> bool:
        return self._path(path).exists()

    def fs_mkdir(self, path: str) -> None:
        self._path(path).mkdir()

    def fs_hashfile(self, path: str, algo: str) -> bytes:
        try:
            return hashlib.new(algo, self._path(path).read_bytes()).digest()
        except FileNotFoundError:
            raise FileNotFoundError(path) from None

    def fs_writefile(self, path: str, data: bytes, progress_callback: object = None) -> None:
        self._path(path).write_bytes(data)


@needs_umqtt
@pytest.mark.parametrize("mpy", [True, False])
@pytest.mark.parametrize("where", ["folder", "http"])
def test_mpremote_mip_installs_from_the_index(index: Path, index_url: str, tmp_path: Path,
                                              mpy: bool, where: str):
    """`mpremote mip install --index OUT [--no-mpy] fota`, OUT a folder or its URL."""
    from mpremote import mip

    board = tmp_path / "board"
    (board / "lib").mkdir(parents=True)
    base = str(index) if where == "folder" else index_url
    mip._install_package(FolderBoard(board), "fota", base, "/lib", None, mpy)
    form = "mpy" if mpy else "py"
    files = sorted(str(p.relative_to(board / "lib")) for p in board.rglob("*") if p.is_file())
    assert files == sorted([dest[:-2] + form for dest, _ in PACKAGE["urls"]] + [f"umqtt/simple.{form}"])
    src = listing(index, board_mpy_version() if mpy else "py", "fota")
    for path, h in src["hashes"]:
        assert (board / "lib" / path).read_bytes() == stored(index, h), path

