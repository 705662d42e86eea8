"""Hostile job documents: every one ends FAILED or REJECTED with a reason, with no flash
operation on the target slot, the device loop alive, and a good update taken afterwards.

The documents come from tests/reliability/hostile.py (every field of every dialect missing,
mistyped, out of range, oversized; wrong operations; documents that are not objects). They run
on the project's own main.py in batches; `make test` takes a seeded sample of them, `make
reliability` all of them."""

from __future__ import annotations

import random
import uuid

import pytest

from fotatools.backend import TERMINAL_STATES, Rollout
from tests.device.rig import firmware
from tests.reliability.board import MAIN, OTA_1, Running, ops_in
from tests.reliability.hostile import documents
from tests.reliability.plugin import full

NEW = firmware("1.0.1", size=40_000)
NOWHERE = "https://127.0.0.1:1/fw.bin"  # a refused port: even a valid document writes nothing
ROW = "hostile job documents"
BATCH = 52
SAMPLE = 24


@pytest.mark.row(ROW)
def test_hostile_documents(rig, tmp_path, tries):
    import hashlib

    docs = documents(NOWHERE, hashlib.md5(NEW).hexdigest(), len(NEW))
    assert len(docs) >= 200
    if not full():
        docs = random.Random(7).sample(docs, SAMPLE)
    r = rig(app=MAIN)
    before = r.running_slot_bytes()
    target_before = bytes(open(r.flash, "rb").read()[OTA_1[0]:OTA_1[1]])
    arn = r.cloud.thing_arn(r.thing)
    for start in range(0, len(docs), BATCH):
        batch = []
        for name, doc, _expected in docs[start:start + BATCH]:
            job = f"hostile-{uuid.uuid4().hex[:10]}"
            r.cloud.create_job(job, [arn], doc, Rollout())
            batch.append((name, job))
        oplog = tmp_path / f"ops-{start}.log"

        def ended() -> bool:
            return all(r.execution(job).status in TERMINAL_STATES for _, job in batch)

        with Running(r, oplog) as board:
            board.until(ended, timeout=240)
            alive = board.dev.running
            result = board.stop()
        touched = ops_in(oplog, *OTA_1)
        for name, job in batch:
            ex = r.execution(job)
            ok = (ex.status in ("FAILED", "REJECTED") and bool(ex.status_details.get("reason"))
                  and not touched and alive and result.boot_count == 1)
            tries.record(ROW, ok, f"{name}: {ex.status} {ex.status_details} alive={alive} "
                                  f"boots={result.boot_count} target ops={touched[:3]}")
    assert r.running_slot_bytes() == before
    assert bytes(open(r.flash, "rb").read()[OTA_1[0]:OTA_1[1]]) == target_before
    assert not tries.failed, tries.failed[:5]

    # ... and the device still takes a good update afterwards
    job = r.publish(NEW)
    with Running(r, tmp_path / "ops-good.log") as board:
        board.until(lambda: r.execution(job).status in TERMINAL_STATES, timeout=120)
        board.stop()
    assert r.execution(job).status == "SUCCEEDED", r.execution(job)
    assert r.version() == "1.0.1"
