"""The table of the device code's limits (tests/device/bounds.py) against the code and the
tests: every pin matches the source, every test it names exists, and every module-level integer
constant of lib/fota is a row of it or is listed as no limit. Reads files only: no emulator."""

from __future__ import annotations

import ast
import operator
import subprocess
import sys
from pathlib import Path

import pytest

from tests.device.bounds import BOUNDS, NOT_BOUNDS, Const, Text

ROOT = Path(__file__).resolve().parents[2]
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
       ast.Pow: operator.pow, ast.LShift: operator.lshift}


def _value(node: ast.expr, known: dict[str, object]) -> object:
    """A constant expression of integers (and earlier constants); ValueError for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in known:
        return known[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        return OPS[type(node.op)](_value(node.left, known), _value(node.right, known))
    raise ValueError(ast.dump(node))


def constants(path: Path) -> dict[str, object]:
    """Module-level UPPER_CASE names of a file -> their values (those that can be read)."""
    known: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts))
            for name, value in pairs:
                if isinstance(name, ast.Name) and name.id.isupper():
                    try:
                        known[name.id] = _value(value, known)
                    except ValueError:
                        pass
    return known


def function_source(path: Path, qualname: str) -> str:
    tree = ast.parse(path.read_text())
    body = tree.body
    node = None
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        assert node is not None, f"{path.name}: no {qualname}"
        body = node.body
    return ast.get_source_segment(path.read_text(), node)


def test_every_pin_matches_the_source():
    wrong = []
    for b in BOUNDS:
        path = ROOT / b.file
        for pin in b.pins:
            if isinstance(pin, Const):
                got = constants(path).get(pin.name)
                if got != pin.value:
                    wrong.append(f"{b.name}: {b.file} {pin.name} is {got!r}, the table says {pin.value!r}")
            elif isinstance(pin, Text):
                if pin.text not in function_source(path, pin.function):
                    wrong.append(f"{b.name}: {b.file} {pin.function} has no {pin.text!r}")
            else:
                wrong.append(f"{b.name}: a pin is {pin!r}")
    assert wrong == []


def test_every_row_has_a_test_on_each_side():
    assert [b.name for b in BOUNDS if not b.inside or not b.outside] == []
    assert len({b.name for b in BOUNDS}) == len(BOUNDS)


def test_every_test_of_the_table_exists():
    wanted = {t for b in BOUNDS for t in b.inside + b.outside}
    files = sorted({t.split("::")[0] for t in wanted})
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                       cwd=ROOT, capture_output=True, text=True)
    collected = set(p.stdout.splitlines())
    assert sorted(wanted - collected) == [], p.stderr[-2000:]


@pytest.mark.parametrize("path", sorted((ROOT / "lib" / "fota").glob("*.py")), ids=lambda p: p.name)
def test_every_integer_constant_is_a_row_or_no_limit(path):
    rel = str(path.relative_to(ROOT))
    pinned = {p.name for b in BOUNDS if b.file == rel for p in b.pins if isinstance(p, Const)}
    ints = {k for k, v in constants(path).items() if isinstance(v, int) and not isinstance(v, bool)}
    listed = {name for f, name in NOT_BOUNDS if f == rel}
    assert sorted(ints - pinned - listed) == [], "in neither the table nor NOT_BOUNDS"
    assert sorted(pinned & listed) == [], "in both"
    assert sorted(listed - ints) == [], "listed in NOT_BOUNDS, not a constant of the file"
