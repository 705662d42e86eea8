"""The verdict on a job counted over every thing it targets (fotatools.progress): a table of
jobs and their targets' states, each with the exit code `fota status` gives it."""

from __future__ import annotations

import pytest

from fotatools.backend import Execution, JobInfo
from fotatools.progress import Progress, rate_text

T0 = 1_750_000_000.0


def job(status: str = "IN_PROGRESS", rollout: dict | None = None) -> JobInfo:
    return JobInfo(job_id="j", status=status, document={}, targets=[],
                   rollout=rollout or {})


def ex(thing: str, status: str, started: bool = True, number: int = 1) -> Execution:
    return Execution(job_id="j", thing_name=thing, status=status, execution_number=number,
                     queued_at=T0, started_at=T0 + 1 if started else None)


# (job status, executions as "thing:STATUS[:queued-only]", target things) -> (code, counts)
CASES = {
    "all succeeded": ("COMPLETED", ["a:SUCCEEDED", "b:SUCCEEDED"], ["a", "b"],
                      0, {"SUCCEEDED": 2}),
    "one still waits": ("IN_PROGRESS", ["a:SUCCEEDED", "b:SUCCEEDED"], ["a", "b", "c"],
                        3, {"SUCCEEDED": 2, "WAITING": 1}),
    "one queued": ("IN_PROGRESS", ["a:SUCCEEDED", "b:QUEUED:q"], ["a", "b"],
                   3, {"SUCCEEDED": 1, "QUEUED": 1}),
    "one in progress": ("IN_PROGRESS", ["a:SUCCEEDED", "b:IN_PROGRESS"], ["a", "b"],
                        3, {"SUCCEEDED": 1, "IN_PROGRESS": 1}),
    "a failure while others wait": ("IN_PROGRESS", ["a:FAILED"], ["a", "b"],
                                    3, {"FAILED": 1, "WAITING": 1}),
    "a failure at the end": ("COMPLETED", ["a:FAILED", "b:SUCCEEDED"], ["a", "b"],
                             1, {"SUCCEEDED": 1, "FAILED": 1}),
    "rejected": ("COMPLETED", ["a:REJECTED"], ["a"], 1, {"REJECTED": 1}),
    "timed out": ("COMPLETED", ["a:TIMED_OUT"], ["a"], 1, {"TIMED_OUT": 1}),
    "removed": ("COMPLETED", ["a:REMOVED:q"], ["a"], 1, {"REMOVED": 1}),
    "spared, never queued": ("CANCELED", ["a:SUCCEEDED"], ["a", "b"],
                             1, {"SUCCEEDED": 1, "SPARED": 1}),
    "spared while queued": ("CANCELED", ["a:SUCCEEDED", "b:CANCELED:q"], ["a", "b"],
                            1, {"SUCCEEDED": 1, "SPARED": 1}),
    "canceled while running": ("CANCELED", ["a:CANCELED"], ["a"], 1, {"CANCELED": 1}),
    "cancelled, one still running": ("CANCELED", ["a:IN_PROGRESS"], ["a", "b"],
                                     3, {"SPARED": 1, "IN_PROGRESS": 1}),
    "an execution not among the targets counts": ("COMPLETED", ["a:SUCCEEDED", "x:FAILED"],
                                                  ["a"], 1, {"SUCCEEDED": 1, "FAILED": 1}),
    "no targets yet": ("IN_PROGRESS", [], [], 3, {}),
    "no targets at the end": ("COMPLETED", [], [], 1, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_verdict(case):
    status, executions, things, code, counts = CASES[case]
    execs = []
    for spec in executions:
        thing, state, *queued = spec.split(":")
        execs.append(ex(thing, state, started=not queued))
    p = Progress.of(job(status), execs, things)
    assert (p.code, p.counts) == (code, counts)
    assert p.result == {0: "succeeded", 1: "failed", 3: "in_progress"}[code]


def test_the_latest_execution_of_a_thing_counts():
    """A retry is a new execution of the same thing: its state is the thing's."""
    p = Progress.of(job(), [ex("a", "QUEUED", False, number=2), ex("a", "FAILED", number=1)],
                    ["a"])
    assert (p.code, p.counts) == (3, {"QUEUED": 1})
    p = Progress.of(job("COMPLETED"), [ex("a", "SUCCEEDED", number=2), ex("a", "FAILED")], ["a"])
    assert (p.code, p.counts) == (0, {"SUCCEEDED": 1})


def test_summary_names_the_rate():
    p = Progress.of(job(rollout={"maximumPerMinute": 1}), [ex("a", "SUCCEEDED")], ["a", "b", "c"])
    assert p.summary() == "1/3 succeeded, 2 waiting (not yet queued at 1/min)"
    assert p.totals() == "totals: 1 SUCCEEDED, 2 WAITING of 3; result: in_progress"
    p = Progress.of(job(), [], ["a"])
    assert p.summary() == "0/1 succeeded, 1 waiting (not yet queued)"


@pytest.mark.parametrize("rollout,text", [
    ({}, ""),
    ({"maximumPerMinute": 50}, "50/min"),
    ({"exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 2.0,
                          "rateIncreaseCriteria": {"numberOfNotifiedThings": 10}}},
     "from 5/min, x2.0"),
])
def test_rate_text(rollout, text):
    assert rate_text(rollout) == text
