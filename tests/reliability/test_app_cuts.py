"""Power cuts across application switches: an application release installed (unpacked into
the other folder on a stock firmware, written into the other ROMFS half on this project's
firmware), switched to for its trial boot and confirmed; and one whose import fails, rolled
back. The power is cut at each flash operation of the clean run (a seeded sample of them
outside `make reliability`). Each time the board ends up running a whole application, the
record apps.json is whole, and the job ends SUCCEEDED exactly when the new application is the
confirmed one; the confirmed application before the switch is untouched until then."""

from __future__ import annotations

import json
import random

import pytest

from emulator.flash import Flash, create_flash
from tests.device import appimage
from tests.device.rig import firmware
from tests.device.test_apps import CONFIRMED, GOOD
from tests.reliability.plugin import full

# As main.py does it, in one pass: the application imported (an import error on its trial
# rolls it back), the FOTA flow run once, then return.
ONCE_APP = """
from fota import apps
import fota
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs

app = apps.start(fota.reject)
conn = Connection(load_config())
conn.connect()
jobs = Jobs(conn)
if fota.testing():
    from fota import selftest
    ok, why = selftest.run(jobs)
    if not ok:
        fota.reject("self-test failed: " + why)
fota.handle_fota_jobs(jobs, force=True)
print("app: done", fota.version(), apps.version())
"""

OLD = "VERSION = '2.0.0'\n" + GOOD
OLD_IMAGE = appimage.app("2.0.0", GOOD)
NEW = appimage.app("2.1.0", GOOD, **{"lib/helper.py": "X = 1\n"})
BAD = appimage.app("2.1.0", "import sensors\n")
SAMPLE = 6
ROW_SWITCH = "power cuts at every flash operation of an application switch"
ROW_ROLLBACK = "power cuts at every flash operation of an application rollback"


def board(boards, route: str):
    r = boards()
    (r.fs / "main.py").write_text(ONCE_APP)
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    if route == "romfs":
        create_flash(r.flash, firmware("1.0.0"), romfs=True, romfs_slots={0: OLD_IMAGE})
    else:
        (r.fs / "app0").mkdir()
        (r.fs / "app0" / "app.py").write_text(OLD)
    return r


def old_intact(r, route: str) -> bool:
    if route == "romfs":
        return Flash(r.flash).romfs_slot(0)[:len(OLD_IMAGE)] == OLD_IMAGE
    return r.file("app0/app.py") == OLD.encode()


def outcome(r, route: str, job: str, result, want_new: bool) -> str:
    """'' when the board, its record and the job agree after the run, else what went wrong."""
    if result.exit_reason != "main-returned":
        return f"run ended {result.exit_reason}"
    ex = r.execution(job)
    if ex.status == "IN_PROGRESS":  # the cut came after the last report: one more boot ends it
        again = r.run(max_boots=4)
        if again.exit_reason != "main-returned":
            return f"the boot after ended {again.exit_reason}"
        ex = r.execution(job)
    try:
        rec = json.loads(r.file("apps.json"))
    except (TypeError, ValueError) as e:
        return f"apps.json is not whole: {e}"
    if ex.status not in ("SUCCEEDED", "FAILED"):
        return f"job {ex.status}"
    if rec["trial"] is not None:
        return f"still on trial after the job ended: {rec}"
    new_runs = rec["slot"] == 1 and rec["versions"][1] == "2.1.0"
    if (ex.status == "SUCCEEDED") != new_runs:
        return f"job {ex.status} but the record is {rec}"
    if not want_new and ex.status == "SUCCEEDED":
        return "an application whose import fails was confirmed"
    if not new_runs and (rec["slot"] != 0 or not old_intact(r, route)):
        return f"the confirmed application 2.0.0 is not whole: {rec}"
    if r.file("fota.json") is not None:
        return "fota.json left behind"
    return ""


def sweep(boards, tries, route: str, image: bytes, row: str, want: str) -> None:
    r = board(boards, route)
    job = r.publish(image, target="app")
    clean = r.run(max_boots=5)
    assert r.execution(job).status == want, clean.console[-3000:]
    total = clean.erases + clean.writes
    cuts = range(1, total + 1) if full() else sorted(
        random.Random(15 + total).sample(range(1, total + 1), min(SAMPLE, total)))
    for cut in cuts:
        r = board(boards, route)
        job = r.publish(image, target="app")
        result = r.run(max_boots=8, cut_at=cut)
        why = (outcome(r, route, job, result, want == "SUCCEEDED")
               if result.flash_stats.get("cuts") == 1 else "the cut was not reached")
        tries.record(row, not why, f"{route} cut {cut} of {total}: {why} "
                                   f"{result.console[-1500:] if why else ''}")
    assert not tries.failed, tries.failed[:3]


@pytest.mark.row(ROW_SWITCH)
@pytest.mark.parametrize("route", ["folders", "romfs"])
def test_cuts_across_an_application_switch(boards, tries, route):
    sweep(boards, tries, route, NEW, ROW_SWITCH, "SUCCEEDED")


@pytest.mark.row(ROW_ROLLBACK)
@pytest.mark.parametrize("route", ["folders", "romfs"])
def test_cuts_across_an_application_rollback(boards, tries, route):
    sweep(boards, tries, route, BAD, ROW_ROLLBACK, "FAILED")
