"""handle_fota_jobs with jobs that change under it (a jobs API stand-in for timing that the
real service cannot be made to hit on demand)."""

from emulator.device import Device
from emulator.flash import create_flash
from tests.device.rig import ROOT, firmware

APP = """
import fota
from jobs import JobsError

class Job:
    def __init__(self, id, doc, error=None):
        self.id, self.document, self.error = id, doc, error
        self.status, self.status_details = "QUEUED", {}
    def describe(self):
        if self.error:
            raise JobsError(self.error, "gone")
        return self

class Jobs:
    def __init__(self, jobs):
        self.jobs = jobs
    def changed(self):
        return True
    def list(self):
        return [], self.jobs

seen = []
jobs = Jobs([Job("cancelled", {"operation": "fota"}, "TerminalStateReached"),
             Job("other", {"operation": "reboot"})])
print("app: reset needed", fota.handle_fota_jobs(jobs, job_cbk=lambda j: seen.append(j.id)))
print("app: callback got", seen)
jobs = Jobs([Job("slow", {"operation": "fota"}, "Timeout")])
try:
    fota.handle_fota_jobs(jobs)
except JobsError as e:
    print("app: raised", e.code)
"""


def test_jobs_that_end_meanwhile_are_skipped_and_timeouts_raised(tmp_path):
    fs = tmp_path / "fs"
    (fs / "lib").mkdir(parents=True)
    for p in (ROOT / "lib").glob("*.py"):
        (fs / "lib" / p.name).write_text(p.read_text())
    (fs / "main.py").write_text(APP)
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    with Device(tmp_path / "flash.bin", fs, echo=None) as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    assert "fota: [check] job cancelled skipped: TerminalStateReached: gone" in r.console
    assert "app: reset needed False" in r.console
    assert "app: callback got ['other']" in r.console
    assert "app: raised Timeout" in r.console
