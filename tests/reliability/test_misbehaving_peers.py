"""Misbehaving peers (tests/device/peers.py and the emulator's faults), each at a few points of
the job: an HTTPS server that breaks, stalls, ignores Range, sends another range or changes the
file, at the first sector, the middle and the last sector of the download; a secondary MCU that
answers late, twice or with a stale sequence number to the image state, an upload chunk or the
reset, or resets late; a broker that drops or repeats each answer of the job's requests; a
flash that programs short in the first, a middle or the last sector. Each try survives when
the job ends as it must: SUCCEEDED with the new version running, or FAILED with the reason
named, the running firmware untouched and no bootable mix in the other slot. `make test` takes
a seeded sample, `make reliability` all of them."""

from __future__ import annotations

import random

import pytest

from emulator.flash import Flash
from tests.device import test_peer_broker as broker
from tests.device import test_peer_flash as flash
from tests.device import test_peer_http as http
from tests.device import test_peer_smp as smp
from tests.device.test_slot_failures import unbootable
from tests.reliability.plugin import full

ROW = "misbehaving peers"
SECTOR = 4096
SIZE = len(http.NEW)
POINTS = {"first sector": 1000, "middle": SIZE // 2 + 123, "last sector": SIZE - 10}

# HTTPS: faults for the requests in turn -> the reason of a FAILED job (None: SUCCEEDED)
HTTP = {
    "broken, then Range ignored": (["truncate {n}", "ignore-range"], None),
    "stalled, then Range ignored": (["stall-body {n}", "ignore-range"], None),
    "broken twice, Range ignored": (["truncate {n}", "ignore-range+truncate {m}"], None),
    "broken, then another file": (["truncate {n}", "swap"], "the file changed on the server"),
    "broken, then another file whole": (["truncate {n}", "swap+ignore-range"], "the file changed on the server"),
    # (a request without Range, before the first whole sector: a 206 is refused as such)
    "broken, then another range": (["truncate {n}", "other-range 0"], ("the server sent them from 0", "HTTP 206")),
    "stalled three times": (["stall-body {n}", "stall-body 1", "stall-body 1"], "ETIMEDOUT"),
}
SMP = {
    f"{name} to the {what}": {**fault, **({"only": only} if only else {})}
    for name, fault in (("late", {"late": [1500, 1]}), ("twice", {"twice": 1}), ("stale", {"stale": 1}))
    for what, only in (("first request", None), ("upload", smp.UPLOAD), ("reset", smp.RESET))
}
SMP.update({f"reset {s} s after its answer": {"reset_late": s} for s in (0.5, 1.5, 3)})
BROKER = {
    f"{action} the {what}": ([(action, broker.JOBS + topic, n)], False, 3600)
    for action in ("drop", "twice")
    for what, topic, n in (("job list", "get/accepted", 1), ("job document", "job-[^/]+/get/accepted", 1),
                           ("start's answer", "job-[^/]+/update/accepted", 1),
                           ("testing report's answer", "job-[^/]+/update/accepted", 2),
                           ("outcome's answer", "job-[^/]+/update/accepted", 3))
}
BROKER["drop every notification"] = ([("drop", broker.JOBS + "notify", 0)], True, 5)
BROKER["twice every notification"] = ([("twice", broker.JOBS + "notify", 0)], True, 3600)
FLASH = [0, 1, SIZE // SECTOR // 2, SIZE // SECTOR]

CASES = ([("http", f, p) for f in HTTP for p in POINTS] + [("smp", f, "") for f in SMP]
         + [("broker", f, "") for f in BROKER] + [("flash", str(s), "") for s in FLASH])
if not full():
    CASES = random.Random(21).sample(CASES, 4)


@pytest.mark.row(ROW)
@pytest.mark.parametrize("peer,fault,point", CASES, ids=[f"{p} {f} {at}".strip() for p, f, at in CASES])
def test_a_misbehaving_peer(rig, cloud, tmp_path, peer, fault, point):
    if peer == "http":
        faults, reason = HTTP[fault]
        n = POINTS[point]
        faults = [f.format(n=n, m=SIZE - n // 2) for f in faults]
        r, job, requests, result = http.update(rig, cloud, faults)
        ex = r.execution(job)
        if reason is None:
            assert ex.status == "SUCCEEDED" and r.version() == "1.0.1", (ex, requests, result.console)
        else:
            reasons = (reason,) if isinstance(reason, str) else reason
            got = ex.status_details.get("reason", "")
            http.failed(r, job, next((x for x in reasons if x in got), reasons[0]), result)
            if n >= SECTOR:  # a sector of the new image was written: its header is gone
                unbootable(r)
    elif peer == "smp":
        mcu, ex, said = smp.job_with(rig, tmp_path, SMP[fault])
        try:
            assert ex.status == "SUCCEEDED", (ex, said)
            mcu.clear_faults()
            mcu.power_cycle()
            assert smp.running(mcu)[0] == "1.1.0", said
        finally:
            mcu.close()
    elif peer == "broker":
        rules, after_start, jobs_s = BROKER[fault]
        r, ex, console, seen = broker.update_through(rig(app=broker.MAIN), cloud, tmp_path, rules,
                                                     after_start, jobs_s)
        assert ex.status == "SUCCEEDED" and r.version() == "1.0.1", (ex, console[-4000:])
        assert [a for _, a in seen if a != "pass"], seen  # the fault did happen
    else:
        short_program(rig, int(fault))


def short_program(rig, sector):
    r = rig()
    before = r.running_slot_bytes()
    off = flash.first_programmed(sector * SECTOR + 100 if sector * SECTOR + 100 < SIZE else sector * SECTOR)
    job = r.publish(flash.NEW)
    result = r.run(max_boots=2, env={"ESP32_SHORT_AT": hex(flash.OTA_1 + off)})
    ex = r.execution(job)
    assert ex.status == "FAILED", (ex, result.console)
    assert ex.status_details["reason"] == "flash read-back differs in sector %d" % (off // SECTOR), ex.status_details
    assert Flash(r.flash).boot_slot() == "ota_0" and r.running_slot_bytes() == before
    assert Flash(r.flash).app_desc("ota_1") is None
