"""pytest plugin behind `make reliability`: every try of a fault is recorded in one row.

A test takes part in a row in one of two ways:
- `@pytest.mark.row("name")`: the test (each of its parameters) is one try; it survived if it
  passed;
- the `tries` fixture, for tests that make many tries in one go (marked with the row too, so
  that `-m row` selects them): `tries.record("name", survived, detail)`; the test must fail as
  well if a try did not survive.
With RELIABILITY_LOG set, each try is appended to that file as a JSON line; `python -m
tests.reliability.table FILE` prints the table.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest


def full() -> bool:
    """True under `make reliability` (RELIABILITY=1): the full sweeps, not a sample."""
    return os.environ.get("RELIABILITY") == "1"


def _append(record: dict[str, Any]) -> None:
    path = os.environ.get("RELIABILITY_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:  # one short line per write: appends stay whole
        f.write(json.dumps(record) + "\n")


class Tries:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.failed: list[str] = []

    def record(self, row: str, survived: bool, detail: str = "") -> None:
        _append({"row": row, "survived": bool(survived), "test": self.nodeid, "detail": detail[:300]})
        if not survived:
            self.failed.append(detail)


@pytest.fixture
def tries(request: pytest.FixtureRequest) -> Tries:
    return Tries(request.node.nodeid)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "row(name): this test is one try in that row of `make reliability`")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("row")
    if marker is None or "tries" in getattr(item, "fixturenames", ()):
        return  # not in a row, or it records its tries itself
    # one record per test: at the call phase, or at setup if it never got that far
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:
            return
        _append({"row": marker.args[0], "survived": report.passed, "test": item.nodeid,
                 "detail": "" if report.passed else str(report.longrepr)[-300:]})
