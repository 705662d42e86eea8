"""tests/mutate.py (make mutants-sample): the operators make the mutants they say, a seed draws
the same sample again, the map picks the tests that run a function, in MicroPython and in
CPython, and an equivalent listed in the file is reported as such."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests import mutate
from tests.mutate import ROOT, Mutant

SNIPPET = '''"""doc"""
LIMIT = 4


def check(n, items):
    """not mutated"""
    if n < LIMIT and items:
        total = n + 1
        store(items, n)
        return total
    return not n
'''


def found(text: str) -> set[tuple[str, str, str, str]]:
    return {(m.function, m.op, m.original, m.replacement) for m in mutate.mutants_of("x.py", text)}


def test_each_operator_makes_its_mutants():
    got = found(SNIPPET)
    for want in [
        ("<module>", "move constant", "4", "5"), ("<module>", "move constant", "4", "3"),
        ("check", "flip comparison", "n < LIMIT", "(n >= LIMIT)"),
        ("check", "move boundary", "n < LIMIT", "(n <= LIMIT)"),
        ("check", "force condition", "n < LIMIT and items", "True"),
        ("check", "force condition", "n < LIMIT and items", "False"),
        ("check", "swap and/or", "n < LIMIT and items", "(n < LIMIT or items)"),
        ("check", "drop condition", "n < LIMIT and items", "items"),
        ("check", "drop condition", "n < LIMIT and items", "(n < LIMIT)"),
        ("check", "swap operator", "n + 1", "(n - 1)"),
        ("check", "move constant", "1", "2"), ("check", "move constant", "1", "0"),
        ("check", "drop statement", "total = n + 1", "pass"),
        ("check", "drop statement", "store(items, n)", "pass"),
        ("check", "swap arguments", "items, n", "n, items"),
        ("check", "replace return", "total", "None"),
        ("check", "replace return", "not n", "None"),
        ("check", "drop not", "not n", "n"),
    ]:
        assert want in got, want
    # docstrings, and names nothing can change, are left alone
    assert not [g for g in got if "doc" in g[2] or "not mutated" in g[2]]
    assert len(got) == 18, sorted(got)


def test_a_mutant_changes_only_its_own_text():
    text = 'A = "é"  # é\n\n\ndef f(x):\n    return g("ü", x) < 3  # ü\n'
    for mu in mutate.mutants_of("x.py", text):
        new = mutate.apply(text, mu)
        assert new[:mu.start] == text[:mu.start] and new[mu.start + len(mu.replacement):] == text[mu.end:]
        compile(new, "x.py", "exec")
    (swap,) = [m for m in mutate.mutants_of("x.py", text) if m.op == "swap arguments"]
    assert mutate.apply(text, swap).splitlines()[4] == '    return g(x, "ü") < 3  # ü'


def test_device_mutants_that_mpy_cross_refuses_are_not_compiling():
    mu = Mutant("lib/fota/x.py", "f", "test", 1, 0, 0, "", "")
    assert mutate.compiles(mu, "def f():\n    return 1\n")
    # valid Python, which MicroPython's compiler refuses
    assert not mutate.compiles(mu, "def f(x):\n    match x:\n        case 1:\n            return 2\n")


def test_every_module_instrumented_still_compiles_everywhere():
    for f in mutate.source_files(ROOT):
        text = mutate.instrument(f, (ROOT / f).read_text())
        assert mutate.compiles(Mutant(f, "", "", 0, 0, 0, "", ""), text), f
        assert f'_fota_hit("{f}::<module>")' in text or (f.startswith("lib/") and "_fota_hit(0)" in text)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A git repository: a device module run by MicroPython, a stand-in module run by CPython,
    a test for each, and the tool itself."""
    root = tmp_path / "repo"
    (root / "lib" / "fota").mkdir(parents=True)
    (root / "tools" / "fotatools" / "cloud").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "lib" / "fota" / "calc.py").write_text(
        "def positive(x):\n    return x > 0\n\n\ndef untested(x):\n    return x + 1\n")
    (root / "tools" / "fotatools" / "cloud" / "names.py").write_text(
        "def shout(s):\n    return s.upper()\n")
    (root / "tests" / "test_calc.py").write_text(
        "import os, subprocess, sys, pathlib\n"
        "LIB = pathlib.Path(__file__).parents[1] / 'lib' / 'fota'\n\n\n"
        "def test_positive():\n"
        "    exe = pathlib.Path(sys.executable).parent / 'micropython'\n"
        "    out = subprocess.run([str(exe), '-c', 'import calc; print(calc.positive(1), calc.positive(0))'],\n"
        "                         env=dict(os.environ, MICROPYPATH=str(LIB)), capture_output=True, text=True)\n"
        "    assert out.stdout.split() == ['True', 'False'], out\n")
    (root / "tests" / "test_names.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'tools'))\n"
        "from fotatools.cloud import names\n\n\n"
        "def test_shout():\n    assert names.shout('a') == 'A'\n")
    for name in ("__init__.py", "mutants.py", "mutate.py"):
        shutil.copy2(ROOT / "tests" / name, root / "tests" / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "lib", "tools", "tests"], cwd=root, check=True)
    return root


def test_a_seed_draws_the_same_mutants_again(repo):
    a = mutate.draw(ROOT, 7, 20)
    assert a == mutate.draw(ROOT, 7, 20)
    assert a != mutate.draw(ROOT, 8, 20)
    assert {m.file.split("/")[0] for m in mutate.draw(ROOT, 1, 400)} == {"lib", "tools"}
    everything = mutate.draw(repo, 1, 1000)
    assert sorted(m.key for m in everything) == sorted(
        m.key for f in ("lib/fota/calc.py", "tools/fotatools/cloud/names.py")
        for m in mutate.mutants_of(f, (repo / f).read_text()))


def test_the_map_picks_the_tests_that_run_a_function(repo):
    tmap = mutate.load_map(repo, ["tests"], remap=False)
    hits = {n: set(t["hits"]) for n, t in tmap["tests"].items()}
    assert hits["tests/test_calc.py::test_positive"] >= {"lib/fota/calc.py::positive",
                                                         "lib/fota/calc.py::<module>"}
    assert "lib/fota/calc.py::untested" not in hits["tests/test_calc.py::test_positive"]
    assert hits["tests/test_names.py::test_shout"] >= {"tools/fotatools/cloud/names.py::shout"}
    assert not any(h.startswith("lib/") for h in hits["tests/test_names.py::test_shout"])
    calc = mutate.mutants_of("lib/fota/calc.py", (repo / "lib/fota/calc.py").read_text())
    names = mutate.mutants_of("tools/fotatools/cloud/names.py",
                              (repo / "tools/fotatools/cloud/names.py").read_text())
    assert mutate.tests_for(calc[0], tmap, 8) == ["tests/test_calc.py::test_positive"]
    assert mutate.tests_for(names[0], tmap, 8) == ["tests/test_names.py::test_shout"]
    assert mutate.tests_for([m for m in calc if m.function == "untested"][0], tmap, 8) == []


def test_the_map_is_made_again_only_for_test_files_that_changed(repo, capsys):
    mutate.load_map(repo, ["tests"], remap=False, chunk=1)
    assert "map: 2 of 2 test files" in capsys.readouterr().out
    mutate.load_map(repo, ["tests"], remap=False)
    assert "map:" not in capsys.readouterr().out  # nothing changed: nothing run
    (repo / "tests" / "test_more.py").write_text(
        "from tests.test_calc import test_positive as test_again  # noqa: F401\n")
    subprocess.run(["git", "add", "tests"], cwd=repo, check=True)
    tmap = mutate.load_map(repo, ["tests"], remap=False)
    out = capsys.readouterr().out
    assert "map: 1 of 3 test files" in out and "tests/test_more.py" in out and "test_names" not in out
    assert "lib/fota/calc.py::positive" in tmap["tests"]["tests/test_more.py::test_again"]["hits"]
    assert "tests/test_names.py::test_shout" in tmap["tests"]  # kept from the first run
    (repo / "tests" / "test_more.py").unlink()
    assert "tests/test_more.py::test_again" not in mutate.load_map(repo, ["tests"], remap=False)["tests"]
    # a function removed: the map stays; a function added: the whole map again
    names = repo / "tools" / "fotatools" / "cloud" / "names.py"
    names.write_text(names.read_text() + "\n\ndef gone():\n    return 1\n")
    mutate.load_map(repo, ["tests"], remap=True)
    capsys.readouterr()
    names.write_text(names.read_text().split("\n\ndef gone")[0] + "\n")
    assert "tools/fotatools/cloud/names.py::gone" not in mutate.load_map(repo, ["tests"], remap=False)["functions"]
    assert "map:" not in capsys.readouterr().out
    calc = repo / "lib" / "fota" / "calc.py"
    calc.write_text(calc.read_text() + "\n\ndef other(x):\n    return x\n")
    tmap = mutate.load_map(repo, ["tests"], remap=False)
    # a new function: the test files that run its file's functions are mapped again, not the others
    out = capsys.readouterr().out
    assert "map: 1 of 2 test files" in out and "map 1/1: tests/test_calc.py" in out
    assert "lib/fota/calc.py::other" in tmap["functions"]
    mutate.load_map(repo, ["tests"], remap=True)
    assert "map: 2 of 2 test files" in capsys.readouterr().out


@pytest.mark.parametrize("jobs", [1, 2])
def test_killed_survived_untested_and_equivalent(repo, capsys, jobs):
    (repo / "lib" / "fota" / "calc.py").write_text(
        "def positive(x):\n    y = x * 1\n    return x > 0\n\n\ndef untested(x):\n    return x + 1\n")
    subprocess.run(["git", "add", "lib"], cwd=repo, check=True)
    (repo / "tests" / "mutants-equivalent.txt").write_text(
        "# comment\n"
        "lib/fota/calc.py | positive | drop statement | y = x * 1 => pass\n"
        "    y is never read\n")
    args = ["--files", "lib/fota/calc.py", "--count", "100", "--map-tests", "tests", "--jobs", str(jobs),
            "--fail-under", "0"]
    assert mutate.main(args, root=repo) == 0
    out = capsys.readouterr().out
    assert "lib/fota/calc.py:2 drop statement: y = x * 1 => pass" in out.replace("  ", " ")
    lines = [line for line in out.splitlines() if "/" in line and "s  lib/" in line]
    result = {line.split("s  ", 1)[1]: line.split()[1] for line in lines}
    assert result["lib/fota/calc.py:2 drop statement: y = x * 1 => pass"] == "equivalent"
    assert result["lib/fota/calc.py:3 move boundary: x > 0 => (x >= 0)"] == "killed"
    assert result["lib/fota/calc.py:2 move constant: 1 => 2"] == "survived"
    assert result["lib/fota/calc.py:7 move constant: 1 => 2"] == "untested"
    assert "SURVIVED: lib/fota/calc.py | positive | move constant | 1 => 2" in out
    assert "-    y = x * 1\n  +    y = x * 2" in out
    assert (repo / "build" / "mutate-map.json").is_file()
    # the default goal is 90 %: this run is below it
    assert mutate.main(args[:-2], root=repo) == 1


def test_a_mutant_that_breaks_the_test_run_is_killed(repo, capsys):
    """A mutant that makes pytest stop short (here: the process exits 2 in the middle of a test,
    as a module that runs its command line when imported makes it exit during collection) is
    killed when its tests pass without it."""
    names = repo / "tools" / "fotatools" / "cloud" / "names.py"
    names.write_text("import os\n\n\ndef shout(s):\n    if s is None:\n        os._exit(2)\n"
                     "    return s.upper()\n")
    args = ["--files", "tools/fotatools/cloud/names.py", "--count", "100", "--map-tests", "tests",
            "--only", "force condition | s is None => True", "--fail-under", "0"]
    assert mutate.main(args, root=repo) == 0
    out = capsys.readouterr().out
    assert "   1/1     killed" in out, out


def test_an_equivalent_may_name_its_line(repo, capsys):
    """A key with " @ <line>" covers the mutant of that line only: the same text moved on
    another line of the function is run, and a survivor prints the key narrowed to its line."""
    (repo / "lib" / "fota" / "calc.py").write_text(
        "def positive(x):\n    y = x * 1\n    z = 1\n    return x > 0\n")
    (repo / "tests" / "mutants-equivalent.txt").write_text(
        "lib/fota/calc.py | positive | move constant | 1 => 2 @ y = x * 1\n    y is never read\n")
    args = ["--files", "lib/fota/calc.py", "--count", "100", "--map-tests", "tests",
            "--only", "move constant | 1 => 2", "--fail-under", "0"]
    assert mutate.main(args, root=repo) == 0
    out = capsys.readouterr().out.replace("  ", " ")
    rows = {line.split("s lib/", 1)[1]: line.split()[1] for line in out.splitlines() if "s lib/" in line}
    assert rows == {"fota/calc.py:2 move constant: 1 => 2": "equivalent",
                    "fota/calc.py:3 move constant: 1 => 2": "survived"}  # z is never read either
    assert "SURVIVED: lib/fota/calc.py | positive | move constant | 1 => 2\n" \
           " on its line only: lib/fota/calc.py | positive | move constant | 1 => 2 @ z = 1\n" in out


def test_the_equivalents_file_gives_a_reason_for_each(tmp_path):
    listed = mutate.read_equivalents(ROOT / mutate.EQUIVALENT_FILE)
    assert all(why for why in listed.values())
    bad = tmp_path / "eq.txt"
    bad.write_text("a | b | c | d => e\n")
    with pytest.raises(ValueError, match="no reason"):
        mutate.read_equivalents(bad)


def test_a_mutant_gets_the_quickest_tests_of_its_function_within_the_budget():
    tmap = {"functions": ["a.py::f", "a.py::<module>", "a.py::C.m"], "tests": {
        "t1": {"duration": 5.0, "outcome": "passed", "hits": ["a.py::f"]},
        "t6": {"duration": 3.0, "outcome": "passed", "hits": ["a.py::C.m"]},
        "t2": {"duration": 1.0, "outcome": "passed", "hits": ["a.py::f"]},
        "t3": {"duration": 0.5, "outcome": "failed", "hits": ["a.py::f"]},
        "t4": {"duration": 9.0, "outcome": "passed", "hits": ["a.py::<module>"]},
        "t5": {"duration": 20.0, "outcome": "passed", "hits": ["a.py::f"]}}}

    def mu(function: str) -> Mutant:
        return Mutant("a.py", function, "op", 1, 0, 0, "", "")

    assert mutate.tests_for(mu("f"), tmap, 10) == ["t2", "t1", "t5"]  # t3 failed in the map run
    assert mutate.tests_for(mu("f"), tmap, 2) == ["t2", "t1"]
    assert mutate.tests_for(mu("f"), tmap, 10, budget=6.0) == ["t2", "t1"]
    assert mutate.tests_for(mu("f"), tmap, 10, budget=0.1) == ["t2"]
    # not instrumented (a class body, a one-line function): the nearest enclosing scope
    assert mutate.tests_for(mu("f.inner"), tmap, 10, budget=6.0) == ["t2", "t1"]
    # a class body: its module's tests and those that run the class's methods (a class
    # attribute is read by them, and a module imported before the tests logs no test at all)
    assert mutate.tests_for(mu("C"), tmap, 10) == ["t6", "t4"]


def test_the_tests_of_the_modules_own_test_file_come_first():
    tmap = {"functions": ["lib/fota/https.py::get"], "tests": {
        "tests/device/test_update.py::test_quick": {"duration": 0.1, "outcome": "passed",
                                                     "hits": ["lib/fota/https.py::get"]},
        "tests/device/test_https.py::test_slow": {"duration": 4.0, "outcome": "passed",
                                                   "hits": ["lib/fota/https.py::get"]},
        "tests/device/test_https_edges.py::test_range": {"duration": 2.0, "outcome": "passed",
                                                          "hits": ["lib/fota/https.py::get"]}}}
    mu = Mutant("lib/fota/https.py", "get", "op", 1, 0, 0, "", "")
    assert mutate.tests_for(mu, tmap, 10) == ["tests/device/test_https_edges.py::test_range",
                                              "tests/device/test_https.py::test_slow",
                                              "tests/device/test_update.py::test_quick"]
    # each group within the budget: the own tests up to 3 s, then the quickest others up to 3 s
    assert mutate.tests_for(mu, tmap, 10, budget=3.0) == ["tests/device/test_https_edges.py::test_range",
                                                          "tests/device/test_update.py::test_quick"]
    assert mutate.tests_for(mu, tmap, 2) == ["tests/device/test_https_edges.py::test_range",
                                             "tests/device/test_https.py::test_slow"]


def test_a_module_constant_is_tried_by_the_tests_of_the_functions_that_read_it(tmp_path):
    (tmp_path / "a.py").write_text("CHUNK = 4 * 1024\nOTHER = 1\n\n\ndef copy(n=3):\n    return CHUNK\n\n\n"
                                   "def other():\n    return OTHER\n")
    ms = mutate.mutants_of("a.py", (tmp_path / "a.py").read_text())
    chunk = [m for m in ms if m.original == "4 * 1024"][0]
    default = [m for m in ms if m.original == "3"][0]
    assert chunk.function == "<module>" and chunk.names == ("CHUNK",)
    assert default.function == "copy"  # a default value is the function's
    assert mutate.readers(tmp_path / "a.py", ("CHUNK",)) == ["copy"]
    tmap = {"functions": ["a.py::<module>", "a.py::copy", "a.py::other"], "tests": {
        "t_import": {"duration": 0.1, "outcome": "passed", "hits": ["a.py::<module>"]},
        "t_copy": {"duration": 1.0, "outcome": "passed", "hits": ["a.py::copy"]},  # imported before
        "t_other": {"duration": 0.5, "outcome": "passed", "hits": ["a.py::<module>", "a.py::other"]}}}
    assert mutate.tests_for(chunk, tmap, 10, root=tmp_path) == ["t_import", "t_other", "t_copy"]
    assert mutate.tests_for([m for m in ms if m.original == "1"][0], tmap, 10, root=tmp_path) == \
        ["t_import", "t_other"]  # OTHER: copy() does not read it
    assert mutate.tests_for(default, tmap, 10, root=tmp_path) == ["t_copy"]


def test_device_hooks_log_numbers_the_host_turns_back_into_names():
    # On the board a hook costs no string per function (an application's heap check failed
    # under the instrumentation when each function logged its name): the file and a number,
    # turned back into "file::function" by the map.
    f = "lib/fota/shadow.py"
    text = (ROOT / f).read_text()
    names = mutate.hit_names(f, text)
    done = mutate.instrument(f, text)
    assert '_fota_hit("' not in done and f"_fota_hit({len(names) - 1})" in done
    assert names[0] == f + "::<module>" and f + "::report" in names
    assert mutate.log_name(f"{f}#{names.index(f + '::report')}", {f: names}) == f + "::report"
    assert mutate.log_name("tools/fotatools/cloud/x.py::f", {f: names}) == "tools/fotatools/cloud/x.py::f"
    assert mutate.log_name(f"{f}#{len(names)}", {f: names}) == f"{f}#{len(names)}"  # not one of them
