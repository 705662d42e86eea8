"""tests/mutants.py (make mutants): the list matches the code, and the tool tells caught from
missed on a small repository of its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import mutants
from tests.mutants import MUTATIONS, ROOT, Mutation


def test_every_mutation_finds_its_text_once_and_changes_it():
    for mu in MUTATIONS:
        assert (mu.file.startswith("lib/") or mu.file in ("boot.py", "main.py")) and mu.file.endswith(".py"), mu.name
        assert (ROOT / mu.file).read_text().count(mu.original) == 1, \
            f"{mu.name}: its original text is not (or not once) in {mu.file}: the code moved"
        assert mu.replacement != mu.original, mu.name


def test_every_mutation_names_tests_that_exist():
    assert len({mu.name for mu in MUTATIONS}) == len(MUTATIONS)
    for mu in MUTATIONS:
        assert mu.tests, mu.name
        for node in mutants.node_ids([mu]):
            assert (ROOT / node.split("::")[0]).is_file(), (mu.name, node)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A git repository with one checked function and its test."""
    root = tmp_path / "repo"
    (root / "lib").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "lib" / "calc.py").write_text(
        "def positive(x):\n    return x > 0\n\n\ndef untested(x):\n    return x + 1\n")
    (root / "tests" / "test_calc.py").write_text(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'lib'))\n"
        "import calc\n\n\ndef test_positive():\n    assert calc.positive(1) and not calc.positive(0)\n")
    (root / "notes.txt").write_text("not tracked\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "lib", "tests"], cwd=root, check=True)
    return root


CAUGHT = Mutation("boundary", "lib/calc.py", "x > 0", "x >= 0", ("tests/test_calc.py",))
MISSED = Mutation("untested", "lib/calc.py", "x + 1", "x + 2", ("tests/test_calc.py",))
MOVED = Mutation("moved", "lib/calc.py", "x < 0", "x <= 0", ("tests/test_calc.py",))


def test_a_caught_mutation_passes(repo, capsys):
    assert mutants.main([], [CAUGHT], root=repo) == 0
    out = capsys.readouterr().out
    assert "baseline: the tests of 1 mutations on the unchanged code: pass" in out
    assert "1 of 1 mutations caught" in out
    assert (repo / "lib" / "calc.py").read_text().count("x > 0") == 1  # the repository is untouched


def test_missed_and_moved_mutations_fail_the_run(repo, capsys):
    assert mutants.main(["--no-baseline"], [CAUGHT, MISSED, MOVED], root=repo) == 1
    rows = {line.split("  ")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert " caught " in rows["boundary"]
    assert " MISSED " in rows["untested"]
    assert " not found " in rows["moved"]


def test_a_failing_baseline_stops_the_run(repo, capsys):
    (repo / "lib" / "calc.py").write_text("def positive(x):\n    return True\n")
    assert mutants.main([], [CAUGHT], root=repo) == 1
    assert "FAIL" in capsys.readouterr().out


def test_tracked_and_new_files_are_copied_and_ignored_ones_are_not(repo, tmp_path):
    """A test file written but not committed yet is part of the copy (else the mutants it
    kills would survive); what .gitignore names (build output, caches) is not."""
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "map.json").write_text("{}")
    (repo / "tests" / "test_new.py").write_text("def test_new():\n    pass\n")
    dest = tmp_path / "copy"
    dest.mkdir()
    mutants.scratch_copy(repo, dest, None)
    assert (dest / "lib" / "calc.py").is_file() and (dest / "tests" / "test_new.py").is_file()
    assert (dest / "notes.txt").is_file()  # not ignored: git would take it
    assert not (dest / "build").exists()
