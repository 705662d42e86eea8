"""Two power cuts in one update: the first at every flash operation of a clean update, the
second at every operation of what follows it (the recovery from the first cut included), for
a small image. After both the board boots a valid firmware and the job ends, SUCCEEDED exactly
when the new firmware runs. `make test` takes a seeded sample of the pairs."""

from __future__ import annotations

import random

import pytest

from tests.device.rig import firmware
from tests.reliability.board import outcome
from tests.reliability.plugin import full

ROW = "two power cuts: during an update and during its recovery"
NEW = firmware("1.0.1", size=8_000)
# A clean update of NEW, filesystem writes of fota.json included (checked below): every first
# cut point of the sweep.
CLEAN_OPS = 34
FIRSTS = range(1, CLEAN_OPS + 1) if full() else sorted(random.Random(3).sample(range(1, CLEAN_OPS + 1), 3))
SECONDS_SAMPLE = 3  # second cut points per first one in the sample


def ops(result) -> int:
    return result.erases + result.writes


@pytest.mark.row(ROW)
def test_clean_update_takes_the_operations_swept(rig):
    r = rig()
    job = r.publish(NEW)
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert ops(result) == CLEAN_OPS, result.console


@pytest.mark.row(ROW)
@pytest.mark.parametrize("first", FIRSTS)
def test_second_cut_during_the_recovery(boards, tries, first):
    # how many operations the run takes with the first cut alone: the second goes after it
    r = boards()
    job = r.publish(NEW)
    once = r.run(max_boots=8, cut_at=first, timeout=120)
    assert once.flash_stats["cuts"] == 1, once.console
    seconds = list(range(first + 1, ops(once) + 1))
    if not full():
        seconds = sorted(random.Random(first).sample(seconds, min(SECONDS_SAMPLE, len(seconds))))
    for second in seconds:
        r = boards()
        job = r.publish(NEW)
        result = r.run(max_boots=10, cut_at=[first, second], timeout=120)
        why = outcome(r, job, result) if result.flash_stats["cuts"] == 2 else "second cut not reached"
        tries.record(ROW, not why, f"cuts {first},{second}: {why} {result.console[-1500:] if why else ''}")
    assert not tries.failed, tries.failed[:3]
