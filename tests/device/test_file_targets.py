"""Jobs of several files (afr_ota, as AWS IoT's OTA Update Manager makes them) on a board with
file targets: each file's signature is checked, each goes to the target registered for its
file id, a file is staged and renamed into place, and the job reports every file's version;
a file id with no target, a bad signature or a short file end the job with the file's id and
the reason, and nothing of the ESP32 is touched."""

from __future__ import annotations

import hashlib
import uuid

from emulator.flash import Flash
from tests.device.rig import ONCE, firmware
from tests.device.test_signed import publish_doc, sig, signed_rig

CONFIG = b"fpga bitstream " * 700  # 10.5 KB: three stream blocks
OLD = b"the old bitstream\n"

# ONCE, with the application's targets registered and its progress callback printing
APP = ONCE.replace("import fota\n", """import fota
from fota import target
fota.targets[2] = target.FileTarget("data/fpga.bit")
fota.targets[5] = target.FileTarget(folder="data")
fota.on_progress = lambda fid, step, done, size: print("app: file %d %s %d/%d" % (fid, step, done, size))
""")


def file_version(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def board(rig, version="1.0.0"):
    r = signed_rig(rig, version)
    (r.fs / "main.py").write_text(APP)
    r.put_file("data/fpga.bit", OLD)
    return r


def multi_job(r, files: list[tuple], signature=sig) -> str:
    """An afr_ota job over one MQTT stream holding `files` (file id, bytes, filepath[, fields
    of the document's entry that differ])."""
    stream = f"AFR_OTA-{uuid.uuid4().hex[:8]}"
    entries, keys = [], []
    for fid, data, path, *change in files:
        p = r.folder / f"file{fid}-{uuid.uuid4().hex[:4]}.bin"
        p.write_bytes(data)
        key = f"fw/{r.thing}-{p.name}"
        r.cloud.upload(p, key)
        keys.append((fid, key))
        entries.append({"fileid": fid, "filepath": path, "filesize": len(data),
                        "certfile": "certs/signer.der", "sig-sha256-ecdsa": signature(data), "fileType": 0,
                        **(change[0] if change else {})})
    r.cloud.create_stream(stream, keys, "several files")
    return publish_doc(r, {"afr_ota": {"protocols": ["MQTT"], "streamname": stream, "files": entries}})


def test_a_file_is_written_into_place_and_its_version_reported(rig):
    r = board(rig)
    before = r.running_slot_bytes()
    job = multi_job(r, [(2, CONFIG, "fpga.bit")])
    result = r.run(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console
    assert ex.status_details == {"step": "confirm", "file_2": file_version(CONFIG)}
    assert r.file("data/fpga.bit") == CONFIG and r.file("data/fpga.bit.new") is None
    assert result.boot_count == 1 and r.running_slot_bytes() == before
    assert "app: file 2 download %d/%d" % (len(CONFIG), len(CONFIG)) in result.console
    assert "app: file 2 done %d/%d" % (len(CONFIG), len(CONFIG)) in result.console
    assert r.file("fota.json") is None


def test_the_documents_filepath_within_a_folder(rig):
    r = board(rig)
    job = multi_job(r, [(5, b"x" * 5000, "/anything/www/index.html")])
    result = r.run(max_boots=2)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.file("data/index.html") == b"x" * 5000


def test_the_longest_name_a_folder_target_writes(rig):
    # 251 bytes, and 255 with ".new": littlefs's longest name (LFS2_NAME_MAX)
    r = board(rig)
    name = "\u00e9" * 120 + "n" * 11  # 131 characters, 251 bytes
    job = multi_job(r, [(5, b"x" * 5000, "/www/" + name)])
    result = r.run(max_boots=2)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.file("data/" + name) == b"x" * 5000 and r.file("data/fpga.bit") == OLD


def test_this_boards_firmware_and_a_file_in_one_job(rig):
    r = board(rig)
    new = firmware("1.0.1", size=100_000)
    job = multi_job(r, [(0, new, "micropython.bin"), (2, CONFIG, "fpga.bit")])
    result = r.run()
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console
    assert ex.status_details == {"step": "confirm", "version": "1.0.1", "from_version": "1.0.0",
                                 "file_2": file_version(CONFIG), "app_version": "none"}
    assert r.version() == "1.0.1" and r.file("data/fpga.bit") == CONFIG
    # the file first, then the firmware and its trial boot
    assert result.console.index("file 2: version") < result.console.index("[boot] slot")


BAD = [
    ("no target", [(3, CONFIG, "x.bin")], sig, "REJECTED", "check", "file 3: no target for this file id"),
    ("bad signature", [(2, CONFIG, "fpga.bit")], lambda d: sig(d + b"x"), "FAILED", "verify",
     "file 2: signature does not verify"),
    ("a good file, then a bad one", [(5, b"y" * 300, "a.txt"), (2, CONFIG, "fpga.bit")],
     lambda d: sig(d if d != CONFIG else b"z"), "FAILED", "verify", "file 2: signature does not verify"),
    ("filepath naming no file", [(5, CONFIG, "/www/")], sig, "FAILED", "download",
     "file 5: filepath '/www/' names no file"),
    ("filesize not the stream's", [(2, CONFIG, "fpga.bit", {"filesize": len(CONFIG) - 1})], sig, "FAILED",
     "download", "file 2: server has %d bytes, document says %d" % (len(CONFIG), len(CONFIG) - 1)),
    ("no target next to firmware", [(0, firmware("1.0.1", size=100_000), "fw.bin"), (9, CONFIG, "x")],
     sig, "REJECTED", "check", "file 9: no target for this file id"),
    # names that are no names: MicroPython's VFS ends a path at NUL, so "fpga.bit\0.new" would
    # be the file itself, removed by a failed job and written over, unstaged, by a good one
    ("NUL in the name, bad signature", [(5, CONFIG, "fpga.bit\u0000")], lambda d: sig(d + b"x"), "FAILED",
     "check", "bad fota data: file 5: filepath 'fpga.bit\\x00' holds a control character"),
    ("NUL in the name, good signature", [(5, CONFIG, "fpga.bit\u0000")], sig, "FAILED",
     "check", "bad fota data: file 5: filepath 'fpga.bit\\x00' holds a control character"),
    ("NUL in the filepath of a fixed file", [(2, CONFIG, "fpga.bit\u0000")], sig, "FAILED",
     "check", "bad fota data: file 2: filepath 'fpga.bit\\x00' holds a control character"),
    ("a control character in the name", [(5, CONFIG, "fpga.bit\u0001")], sig, "FAILED",
     "check", "bad fota data: file 5: filepath 'fpga.bit\\x01' holds a control character"),
    (".. in the filepath", [(5, CONFIG, "../data/fpga.bit")], sig, "FAILED",
     "check", "bad fota data: file 5: filepath '../data/fpga.bit': .. is not a name"),
    ("a name too long for its .new", [(5, CONFIG, "/www/" + "n" * 252)], sig, "FAILED", "download",
     "file 5: filepath names a file of 252 bytes; with .new the filesystem takes 251 at most"),
]


import pytest  # noqa: E402


@pytest.mark.parametrize("name,files,signature,status,step,reason", BAD, ids=[b[0] for b in BAD])
def test_refused(rig, name, files, signature, status, step, reason):
    r = board(rig)
    before = r.running_slot_bytes()
    job = multi_job(r, files, signature)
    result = r.run(max_boots=2)
    ex = r.execution(job)
    assert (ex.status, ex.status_details.get("step"), ex.status_details.get("reason")) == (status, step, reason), result.console
    assert r.file("data/fpga.bit") == OLD and r.file("data/fpga.bit.new") is None
    assert result.boot_count == 1 and r.running_slot_bytes() == before
    assert Flash(r.flash).boot_slot() == "ota_0" and r.file("fota.json") is None


def test_a_short_file_is_not_put_in_place(tmp_path):
    # The target's own size check, for an application that feeds it directly.
    from tests.device.mpy import run_json

    out = run_json("""
import json, os
from fota import target
class F:
    id, size, path = 2, 100, None
t = target.FileTarget("f.bin")
t.create(F)
t.write(0, b"x" * 99)
try:
    t.close()
except target.TargetError as e:
    t.abort()
    print(json.dumps([str(e), os.listdir()]))
""", cwd=tmp_path)
    assert out == ["99 bytes stored of 99 written, the file has 100", []]


def test_a_folder_target_refuses_what_is_no_name_and_touches_nothing(tmp_path):
    # The target's own checks, for an application that feeds it directly: the name is refused
    # before a file is opened, and abort() then removes nothing (not the last file's ".new").
    from tests.device.mpy import run_json

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.bin").write_bytes(b"old")
    (tmp_path / "d" / "f.bin.new").write_bytes(b"staged")
    out = run_json("""
import json, os
from fota import target
class F:
    id, size = 5, 3
t = target.FileTarget(folder="d")
F.path = "f.bin"
t.where(F)
out = []
for name in ("f.bin\\x00", "f.bin\\x1f", "f.bin\\x85", "f.bin\\\\..", "/www/", "n" * 252, "\\u00e9" * 126):
    F.path = name
    try:
        t.create(F)
        out.append("taken")
    except target.TargetError as e:
        t.abort()
        out.append(str(e))
F.path = "n" * 251
t.create(F)
t.write(0, b"new")
t.close()
out.append(sorted(os.listdir("d")))
print(json.dumps(out))
""", cwd=tmp_path)
    assert out == ["filepath 'f.bin\\x00' holds a control character",
                   "filepath 'f.bin\\x1f' holds a control character",
                   "filepath 'f.bin\\x85' holds a control character",
                   "filepath 'f.bin\\\\..' names no file",
                   "filepath '/www/' names no file",
                   "filepath names a file of 252 bytes; with .new the filesystem takes 251 at most",
                   "filepath names a file of 252 bytes; with .new the filesystem takes 251 at most",
                   ["f.bin", "f.bin.new", "n" * 251 + ".new"]]
    assert (tmp_path / "d" / "f.bin").read_bytes() == b"old"
    assert (tmp_path / "d" / "f.bin.new").read_bytes() == b"staged"


def test_each_file_done_is_reported_while_the_job_goes_on(rig):
    # Once the last file is through, the device asks the Jobs service what its job says: the
    # first file is reported there already.
    r = board(rig)
    app = APP.replace("fota.on_progress = ", """def progress(fid, step, done, size):
    if fid == 2 and step == "download" and done == size:
        mine = jobs.list()[0][0]
        mine.describe()
        print("app: the job says", sorted(mine.status_details.items()))
fota.on_progress = progress
_unused = """)
    (r.fs / "main.py").write_text(app)
    job = multi_job(r, [(5, b"y" * 300, "a.txt"), (2, CONFIG, "fpga.bit")])
    result = r.run(max_boots=2)
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert "app: the job says [('file_5', '%s'), ('from_version', '1.0.0'), ('step', 'files')]" % \
        file_version(b"y" * 300) in result.console, result.console


def test_files_over_https(rig):
    # protocols ["HTTP"]: each file from its own (pre-signed) update_data_url.
    r = board(rig)
    entries = []
    for fid, data, path in [(2, CONFIG, "fpga.bit"), (5, b"z" * 5000, "z.txt")]:
        p = r.folder / f"http{fid}.bin"
        p.write_bytes(data)
        url = r.cloud.upload(p, f"fw/{r.thing}-{p.name}")
        entries.append({"fileid": fid, "filepath": path, "filesize": len(data), "certfile": "c",
                        "update_data_url": "${aws:iot:s3-presigned-url:%s}" % url,
                        "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": sig(data)})
    job = publish_doc(r, {"afr_ota": {"protocols": ["HTTP"], "files": entries}})
    result = r.run(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", result.console
    assert ex.status_details == {"step": "confirm", "file_2": file_version(CONFIG),
                                 "file_5": file_version(b"z" * 5000)}
    assert r.file("data/fpga.bit") == CONFIG and r.file("data/z.txt") == b"z" * 5000
    assert "fota: [download] over HTTPS from" in result.console


def test_what_an_application_sets_on_the_package_after_fota_run_counts(rig):
    # The loop is already running when the application (in its slot) is imported: the target
    # and the progress callback it sets on the package then are the ones the job uses.
    import json

    from tests.device.test_apps import CONFIRMED, MAIN
    from tests.device.test_main import run_until

    r = signed_rig(rig)
    (r.fs / "main.py").write_text(MAIN)
    (r.fs / "app0").mkdir()
    (r.fs / "app0" / "app.py").write_text(
        "import fota\nfrom fota.target import FileTarget\nVERSION = '2.0.0'\n"
        "fota.targets[2] = FileTarget('data/fpga.bit')\n"
        "fota.on_progress = lambda fid, step, done, size: print('app: file %d %s' % (fid, step))\n")
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    r.put_file("data/fpga.bit", OLD)
    job = multi_job(r, [(2, CONFIG, "fpga.bit")])
    result, console = run_until(r, job, "SUCCEEDED")
    assert r.file("data/fpga.bit") == CONFIG
    assert "app: file 2 done" in console, console
