"""lib/fota/files.py: what the application is told while a file of a job comes in."""

from __future__ import annotations

import re

import pytest

from tests.device.test_file_targets import board, file_version, multi_job
from tests.device.test_signed import publish_doc, sig

BIG = bytes(range(256)) * 80  # 20480 bytes: forty 512-byte reads, a 10 % mark every 2048


def _downloads(console: str, fid: int) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"app: file %d download (\d+)/(\d+)" % fid, console)]


@pytest.mark.parametrize("protocol", ["HTTP", "MQTT"])
def test_a_file_download_is_reported_once_every_tenth(rig, protocol):
    # The application's progress callback hears of a file's download once per 10 % of it
    # (core.CHUNK_LOG), the last time at its whole size: never once per read.
    r = board(rig)
    if protocol == "MQTT":
        job = multi_job(r, [(5, BIG, "big.bin")])
    else:
        p = r.folder / "big.bin"
        p.write_bytes(BIG)
        url = r.cloud.upload(p, f"fw/{r.thing}-big.bin")
        job = publish_doc(r, {"afr_ota": {"protocols": ["HTTP"], "files": [
            {"fileid": 5, "filepath": "big.bin", "filesize": len(BIG), "certfile": "c",
             "update_data_url": "${aws:iot:s3-presigned-url:%s}" % url,
             "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": sig(BIG)}]}})
    result = r.run(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console
    assert ex.status_details["file_5"] == file_version(BIG)
    seen = _downloads(result.console, 5)
    assert len(seen) == 10, seen
    assert all(size == len(BIG) for _, size in seen)
    assert seen[-1][0] == len(BIG)
    step = len(BIG) // 10
    assert all(done >= (i + 1) * step for i, (done, _) in enumerate(seen)), seen
    assert all(a < b for (a, _), (b, _) in zip(seen, seen[1:])), seen
    # a file target starts a staged file from its first byte, and says so
    assert re.search(r"\[download\] file 5, %d bytes\r?\n" % len(BIG), result.console), result.console


def test_a_job_of_files_on_a_board_without_a_signer_key_fails_and_nothing_else_happens(rig):
    from tests.device.test_file_targets import APP, OLD

    r = rig()  # no signer key configured
    (r.fs / "main.py").write_text(APP)
    r.put_file("data/fpga.bit", OLD)
    job = multi_job(r, [(2, BIG, "fpga.bit")])
    result = r.run(max_boots=2)
    assert result.exit_reason == "main-returned" and result.boot_count == 1, result.console
    ex = r.execution(job)
    assert ex.status == "FAILED", result.console
    assert ex.status_details == {"step": "check",
                                 "reason": "afr_ota images are code-signed: this device has no signer key"}
    assert "app: done" in result.console and "Traceback" not in result.console, result.console
    assert r.file("data/fpga.bit") == OLD and r.file("data/fpga.bit.new") is None
    assert r.file("fota.json") is None
