"""A power cut at every flash operation of an update: the board always boots a valid firmware,
and the job always ends, SUCCEEDED exactly when the new firmware runs.

Every flash operation counts: the bootloader's otadata writes, the image sectors, set_boot,
and the filesystem's, since the record of the update in flight (fota.json, written to a
temporary file and renamed) lives in littlefs on the flash as on a board. The sweep first
counts the operations of a clean update, then repeats the update once per operation,
cutting the power in the middle of it (42 runs). A second sweep does the same with an
application that writes its own files at every boot: they are always whole, old or new, and
the update is unaffected; it cuts at a seeded sample of its operations (APP_SAMPLE of
APP_OPS) to keep the suite's time down, and at every one of them in `make reliability`."""

import json
import random

import pytest

from emulator.flash import Flash, create_flash
from emulator.flashfs import FlashFS
from tests.device.rig import ONCE, firmware
from tests.reliability.plugin import full

NEW = firmware("1.0.1", size=24_000)  # a few sectors: every kind of operation, quickly
# A clean update of NEW: otadata at the first boot (2), 6 sectors erased and written (12),
# set_boot (2), NEW -> PENDING_VERIFY at the trial boot (2), confirm (2): 20; and 22 in the
# filesystem: the record of the update written at each step (a littlefs commit for the
# temporary file, one for the rename) and removed at the end.
CLEAN_OPS = 42

# The application's own files: a state file rewritten and a log appended at every boot,
# before the FOTA flow runs (so between the download and the trial boot too).
APP_FILES = """
import os
try:
    with open("app.txt") as f:
        n = int((f.read().split() or [0])[0])  # empty: a cut came before its first commit
except OSError:
    n = 0
with open("app.txt", "w") as f:
    f.write(("%d " % (n + 1)) * 700)
with open("applog.txt", "a") as f:
    f.write("boot %d\\n" % (n + 1))
"""
APP_OPS = 72
APP_SAMPLE = 16  # cuts tried in the application sweep: a seeded sample of its APP_OPS


def ops(result):
    return result.erases + result.writes


def check_consistent(r, job, result):
    """After a run with a cut: a valid image boots, the job ended, SUCCEEDED exactly when
    1.0.1 runs, and the record of the update is gone (or, if the job is not over, whole)."""
    f = Flash(r.flash)
    slot = f.boot_slot()
    f.verify_slot(slot)  # raises if the image the bootloader chose does not verify
    ex = r.execution(job)
    if ex.status == "IN_PROGRESS":  # the cut came after the last report: one more boot finishes it
        record = r.file("fota.json")
        assert record is None or json.loads(record)["job"] == job, record
        again = r.run(max_boots=4)
        assert again.exit_reason == "main-returned", again.console
        ex = r.execution(job)
        f = Flash(r.flash)
    version = f.app_desc(f.boot_slot())["version"]
    assert ex.status in ("SUCCEEDED", "FAILED"), (ex, result.console)
    assert (ex.status == "SUCCEEDED") == (version == "1.0.1"), (ex, version, result.console)
    assert r.file("fota.json") is None, result.console
    return version


def test_clean_update_fits_the_sweep(rig, tmp_path):
    r = rig()
    job = r.publish(NEW)
    log = tmp_path / "ops.log"
    result = r.run(env={"ESP32_OPLOG": str(log)})
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert ops(result) == CLEAN_OPS, result.console
    # the record's writes are flash operations of the filesystem (the vfs partition)
    vfs = FlashFS(r.flash).part
    in_vfs = [line for line in log.read_text().splitlines()
              if vfs.offset <= int(line.split()[1], 16) < vfs.offset + vfs.size]
    assert len(in_vfs) >= 8, in_vfs


@pytest.mark.row("power cuts at every flash operation of an update")
@pytest.mark.parametrize("cut", range(1, CLEAN_OPS + 1))
def test_power_cut(rig, cut):
    r = rig()
    job = r.publish(NEW)
    with_cut = r.run(max_boots=8, cut_at=cut, timeout=120)
    assert with_cut.flash_stats.get("cuts") == 1, with_cut.console  # every cut is inside the update
    assert with_cut.exit_reason == "main-returned", with_cut.console
    check_consistent(r, job, with_cut)


def app_rig(rig):
    app = APP_FILES + ONCE
    return rig(app=app)


def check_app_files(r, boots):
    # littlefs commits a new file's name when it is opened and its data when it is closed:
    # a cut in between leaves it empty; a file rewritten or appended keeps its old content
    state = (r.file("app.txt") or b"").decode()
    tokens = state.split()
    assert tokens == [] or (len(tokens) == 700 and len(set(tokens)) == 1), state[:80]
    n = int(tokens[0]) if tokens else 0
    log = (r.file("applog.txt") or b"").decode()
    lines = log.splitlines(keepends=True)
    numbers = [int(line[5:]) for line in lines]
    assert lines == ["boot %d\n" % k for k in numbers], log  # whole lines only
    # each boot commits its state, then appends its line: a cut between the two commits
    # loses that boot's line (one cut, at most one line), never an older one's
    assert numbers == sorted(set(numbers)) and len(set(range(1, n + 1)) - set(numbers)) <= 1, log
    assert not numbers or numbers[-1] <= n, (log, n)
    assert n <= boots


def test_clean_update_with_application_files(rig):
    r = app_rig(rig)
    job = r.publish(NEW)
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert ops(result) == APP_OPS, result.console
    check_app_files(r, len(result.boots))


@pytest.mark.row("power cuts while the application writes its own files")
@pytest.mark.parametrize("cut", range(1, APP_OPS + 1) if full() else sorted(
    random.Random(2026).sample(range(1, APP_OPS + 1), min(APP_SAMPLE, APP_OPS))))
def test_power_cut_while_the_application_writes_files(rig, cut):
    r = app_rig(rig)
    job = r.publish(NEW)
    with_cut = r.run(max_boots=8, cut_at=cut, timeout=120)
    assert with_cut.flash_stats.get("cuts") == 1, with_cut.console
    assert with_cut.exit_reason == "main-returned", with_cut.console
    check_app_files(r, len(with_cut.boots))
    check_consistent(r, job, with_cut)


def test_download_resumes_after_a_power_cut(rig, tmp_path):
    r = rig()
    image = firmware("1.0.1", size=300_000)
    # Find the operation that erases sector 20 of ota_1 in a clean update (the board's log of
    # its flash operations), then cut there on a fresh board: the record said 64 KB (16
    # sectors) were in flash.
    log = tmp_path / "ops.log"
    r.publish(image)
    r.run(max_boots=5, env={"ESP32_OPLOG": str(log)})
    target = "E %x %x" % (0x190000 + 20 * 4096, 4096)
    cut = 2 + log.read_text().splitlines().index(target) + 1  # after the bootloader's 2
    create_flash(r.flash, firmware("1.0.0"))
    job = r.publish(image)
    result = r.run(max_boots=5, cut_at=cut)
    assert result.flash_stats.get("cuts") == 1
    assert result.exit_reason == "main-returned", result.console
    assert "fota: [download] resuming at byte 65536" in result.console
    assert r.execution(job).status == "SUCCEEDED"
    assert r.version() == "1.0.1"
