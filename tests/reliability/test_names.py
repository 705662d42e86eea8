"""Odd names through the whole job flow: every afr_ota filepath that is no name for a file
target (a control character anywhere, ".." as a part, a name longer than littlefs keeps with
".new", a path naming no file) ends its job FAILED with the reason, the file the target holds
stays byte for byte as it was and no other file appears, and the project's loop (fota.run) goes
on: one boot, and a good file taken afterwards.

The names go to a folder target (the filepath's last part names the file) and, those the
document check refuses, to a target of a fixed file too; half of the files are signed well, so
that a name that got through would replace the file, the other half badly, so that it would
remove it. `make test` takes a seeded sample, `make reliability` all of them."""

from __future__ import annotations

import random
import uuid

import pytest

from fotatools.backend import TERMINAL_STATES, Rollout
from tests.device.test_signed import publish_doc, sig, signed_rig
from tests.reliability.board import Running
from tests.reliability.plugin import full

ROW = "names"
OLD = b"the old bitstream\n"
DATA = b"fpga bitstream " * 300
BATCH = 50
SAMPLE = 16
MAIN = """import fota
from fota.target import FileTarget
fota.run(targets={2: FileTarget("data/fpga.bit"), 5: FileTarget(folder="data")})
"""
CONTROLS = [chr(c) for c in list(range(32)) + [127] + list(range(128, 160))]


def odd_names() -> list[tuple[str, int]]:
    """(filepath, file id): each a name the device must refuse."""
    out: list[tuple[str, int]] = []
    for c in CONTROLS:  # at the end, where a VFS that ends the path there finds the file itself
        out += [("fpga.bit" + c, 5), ("fpga.bit" + c, 2)]
    for name in ("\u0000fpga.bit", "fp\u0000ga.bit", "fpga.bit\u0000.txt", "/www/fpga.bit\u0000",
                 "\u0000", "fpga.bit\u0000\u0000", "fpga.bit\r\n", "fpga.bit\u001b[2J", "/www\u0000/fpga.bit"):
        out += [(name, 5), (name, 2)]
    for name in ("..", "../fpga.bit", "../data/fpga.bit", "/sd/../fpga.bit", "www/..", "/../../fpga.bit",
                 "..\\fpga.bit", "a\\..\\fpga.bit", "www/../../data/fpga.bit"):
        out += [(name, 5), (name, 2)]
    for name in ("n" * 252, "n" * 255, "n" * 256, "n" * 4000, "\u00e9" * 126, "/www/" + "n" * 256 + "/fpga.bit",
                 "/www/" + "\u00e9" * 128):
        out.append((name, 5))
    for name in ("/", "/www/", ".", "www/.", "fpga.bit/", "\\"):
        out.append((name, 5))
    out.append(("", 5))
    return out


@pytest.mark.row(ROW)
def test_odd_names(rig, tmp_path, tries):
    names = odd_names()
    assert len(names) >= 150
    if not full():
        names = random.Random(11).sample(names, SAMPLE)
    r = signed_rig(rig)
    (r.fs / "main.py").write_text(MAIN)
    r.put_file("data/fpga.bit", OLD)
    stream = f"AFR_OTA-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "fpga.bit"
    src.write_bytes(DATA)
    key = f"fw/{r.thing}-fpga.bit"
    r.cloud.upload(src, key)
    r.cloud.create_stream(stream, [(2, key), (5, key)], "odd names")
    good, bad = sig(DATA), sig(DATA + b"x")

    def doc(path: str, fid: int, signature: str) -> dict:
        return {"afr_ota": {"protocols": ["MQTT"], "streamname": stream, "files": [{
            "fileid": fid, "filepath": path, "filesize": len(DATA), "certfile": "certs/signer.der",
            "sig-sha256-ecdsa": signature, "fileType": 0}]}}

    for start in range(0, len(names), BATCH):
        batch = []
        for i, (path, fid) in enumerate(names[start:start + BATCH]):
            job = publish_doc(r, doc(path, fid, good if i % 2 else bad))
            batch.append((path, fid, job))

        def ended() -> bool:
            return all(r.execution(job).status in TERMINAL_STATES for *_, job in batch)

        with Running(r, tmp_path / f"ops-{start}.log") as board:
            board.until(ended, timeout=300)
            alive = board.dev.running
            result = board.stop()
        fs = r.file("data/fpga.bit")
        listing = sorted(name for name, *_ in r_listing(r))
        intact = fs == OLD and listing == ["fpga.bit"]
        for path, fid, job in batch:
            ex = r.execution(job)
            reason = ex.status_details.get("reason", "")
            ok = (ex.status == "FAILED" and f"file {fid}: filepath" in reason and intact and alive
                  and result.boot_count == 1)
            tries.record(ROW, ok, f"file {fid} {path[:40]!r}: {ex.status} {reason[:120]!r} data/={listing[:4]} "
                                  f"intact={intact} alive={alive} boots={result.boot_count}")
    assert not tries.failed, tries.failed[:5]

    # ... and the loop takes a good file afterwards
    job = publish_doc(r, doc("/www/fpga.bit", 5, good))
    with Running(r, tmp_path / "ops-good.log") as board:
        board.until(lambda: r.execution(job).status in TERMINAL_STATES, timeout=120)
        board.stop()
    assert r.execution(job).status == "SUCCEEDED", r.execution(job)
    assert r.file("data/fpga.bit") == DATA


def r_listing(r) -> list[tuple[str, bool, int]]:
    """The entries of the board's data/ folder."""
    from emulator.flash import Flash

    return Flash(r.flash).filesystem().listdir("data")
