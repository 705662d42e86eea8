"""Power cuts across a full-size update: a 1.5 MB image, cut at a seeded sample of its flash
operations (the sweep over every operation is done on a small image). Each time a valid
firmware boots and the job ends, SUCCEEDED exactly when the new firmware runs."""

from __future__ import annotations

import random

import pytest

from tests.device.rig import firmware
from tests.reliability.board import outcome
from tests.reliability.plugin import full

ROW = "power cuts at sampled operations of a full-size (1.5 MB) update"
NEW = firmware("1.0.1", size=1_500_000)
SAMPLE = 40 if full() else 3


@pytest.mark.row(ROW)
def test_cuts_across_a_full_size_update(boards, tries):
    r = boards()
    job = r.publish(NEW)
    clean = r.run(timeout=300)
    assert r.execution(job).status == "SUCCEEDED", clean.console[-3000:]
    total = clean.erases + clean.writes
    assert total > 2 * (len(NEW) // 4096), total  # every sector erased and written
    for cut in sorted(random.Random(1500).sample(range(1, total + 1), SAMPLE)):
        r = boards()
        job = r.publish(NEW)
        result = r.run(max_boots=8, cut_at=cut, timeout=300)
        why = outcome(r, job, result) if result.flash_stats["cuts"] == 1 else "the cut was not reached"
        tries.record(ROW, not why, f"cut {cut} of {total}: {why} {result.console[-1500:] if why else ''}")
    assert not tries.failed, tries.failed[:3]
