"""The board reports to its device shadow, at boot and after every job it ends: the project's own
main.py on the emulated board, the stand-in's broker and shadow service, read as the host reads
it (GetThingShadow through the control API, fotatools.fleet)."""

import json
import time
import uuid

from emulator.device import Device
from fotatools import cli, fleet
from fotatools.backend import Rollout
from tests.device.rig import ROOT, firmware


def wait_for(pred, timeout=90.0, what="condition", dev=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (":\n" + dev.console if dev else ""))


def state(r):
    return fleet.from_shadow(r.thing, r.cloud.thing_shadow(r.thing))


def test_the_board_reports_what_it_runs_and_how_each_job_ended(rig, capsys):
    r = rig(app=(ROOT / "main.py").read_text())
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["telemetry_s"] = 30  # jobs are picked up from their notifications
    (r.fs / "config.json").write_text(json.dumps(cfg))
    assert r.cloud.thing_shadow(r.thing) is None
    dev = Device(r.flash, r.fs, heapsize="256k", echo=None)
    dev.start(timeout=240)
    try:
        # at boot: what it runs, no job yet
        s = wait_for(lambda: state(r).reported and state(r), timeout=30, what="the boot report", dev=dev)
        assert (s.firmware, s.application, s.job_id, s.files) == ("1.0.0", "none", None, {})
        assert s.shadow_version == 1
        # a job it cannot take: REJECTED, with the reason
        other = f"job-{uuid.uuid4().hex[:10]}"
        r.cloud.create_job(other, [r.cloud.thing_arn(r.thing)], {"operation": "reboot"}, Rollout())
        s = wait_for(lambda: state(r).job_id == other and state(r), what="the rejected job's report", dev=dev)
        assert (s.job_status, s.reason, s.step) == ("REJECTED", "unsupported operation: reboot", "jobs")
        assert s.firmware == "1.0.0"
        # a firmware job: the new firmware reports itself and the job, and the old reason goes
        job = r.publish(firmware("1.0.1", size=400_000))
        s = wait_for(lambda: state(r).job_id == job and state(r), what="the firmware job's report", dev=dev)
        assert (s.firmware, s.job_status, s.step, s.reason) == ("1.0.1", "SUCCEEDED", "confirm", None)
        assert s.application == "none"
    finally:
        dev.stop()
    assert r.execution(job).status == "SUCCEEDED"
    assert "app: error" not in dev.console
    # what `make demo` leaves for `fota things --json` to show
    assert cli.main(["--home", str(r.cloud.home), "things", "--json"]) == 0
    (mine,) = [t for t in json.loads(capsys.readouterr().out) if t["thing"] == r.thing]
    assert (mine["firmware"], mine["application"], mine["job_id"], mine["job_status"]) == \
        ("1.0.1", "none", job, "SUCCEEDED")
    assert s.reported_at is not None and abs(s.reported_at - time.time()) < 3600


# --- fota/shadow.py and fota/jobs.py in MicroPython, against the stand-in ---------------------

PRELUDE = """
import json, sys
class _Apps:
    def version(self):
        return "2.0.0"
class _Core:  # what fota/core.py answers on a board: the emulator's flash is not here
    def version(self):
        return "1.0.0"
    def apps(self):
        return _Apps()
sys.modules["fota.core"] = _Core()
class _Slots:  # fota/otaslot.py's chip id: the running image's, an ESP32's here
    def chip_id(self):
        return 0
sys.modules["fota.otaslot"] = _Slots()
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs
from fota import shadow
conn = Connection(load_config())
conn.connect()
jobs = Jobs(conn, timeout_ms=5000)
"""


def device(r, code: str) -> object:
    import os

    from tests.device.mpy import run_json

    path = [str(r.fs / "lib"), ".frozen"]
    return run_json(PRELUDE + code, cwd=r.fs, env={"MICROPYPATH": os.pathsep.join(path)})


def job_for(r) -> str:
    job_id = f"j-{uuid.uuid4().hex[:8]}"
    r.cloud.create_job(job_id, [r.cloud.thing_arn(r.thing)], {"operation": "other"}, Rollout())
    return job_id


def test_jobs_remember_the_last_ended_job_and_the_file_versions_and_the_report_says_them(rig):
    r = rig()
    first, second = job_for(r), job_for(r)
    out = device(r, f"""
before = json.loads(shadow.document(jobs))
jobs.update("{first}", "IN_PROGRESS", {{"step": "files", "file_1": "2.0.0"}})
mid = [jobs.ended, jobs.last, dict(jobs.files)]
jobs.update("{first}", "FAILED", {{"step": "files", "reason": "x" * 300, "file_2": "sha256:ab"}})
jobs.update("{second}", "IN_PROGRESS")
jobs.update("{second}", "SUCCEEDED", {{"file_1": "2.1.0"}})
shadow.report(jobs)
print(json.dumps([before, mid, jobs.ended, jobs.last, json.loads(shadow.document(jobs))]))
""")
    before, mid, ended, last, doc = out
    assert before == {"state": {"reported": {"firmware": "1.0.0", "app": "2.0.0", "chip": 0}}}
    assert mid == [0, None, {"file_1": "2.0.0"}]  # an IN_PROGRESS update ends nothing
    assert ended == 2 and last == [second, "SUCCEEDED", {"file_1": "2.1.0"}]
    assert doc["state"]["reported"] == {
        "firmware": "1.0.0", "app": "2.0.0", "chip": 0,
        "files": {"file_1": "2.1.0", "file_2": "sha256:ab"},
        "job": {"id": second, "status": "SUCCEEDED", "reason": None, "step": None}}
    s = wait_for(lambda: state(r).reported and state(r), timeout=10, what="the report")
    assert (s.firmware, s.application, s.job_id, s.job_status) == ("1.0.0", "2.0.0", second, "SUCCEEDED")
    assert s.files == {"file_1": "2.1.0", "file_2": "sha256:ab"} and s.reason is None


def test_a_reason_is_cut_at_256_characters(rig):
    r = rig()
    jobs = [job_for(r) for _ in range(3)]
    out = device(r, f"""
out = []
for job, n in zip({jobs!r}, (255, 256, 257)):
    jobs.update(job, "FAILED", {{"reason": "r" * n}})
    out.append(len(json.loads(shadow.document(jobs))["state"]["reported"]["job"]["reason"]))
print(json.dumps(out))
""")
    assert out == [255, 256, 256]
