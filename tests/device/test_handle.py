"""handle_fota_jobs with jobs that change under it (a jobs API stand-in for timing that the
real service cannot be made to hit on demand)."""

from emulator.device import Device
from emulator.flash import create_flash
from tests.device.rig import device_folder, firmware

APP = """
import fota
from fota.jobs import JobsError

ENDED = {}

class Job:
    def __init__(self, id, doc, error=None):
        self.id, self.document, self.error = id, doc, error
        self.status, self.status_details = "QUEUED", {}
    def describe(self):
        if self.error:
            raise JobsError(self.error, "gone")
        return self
    def update(self, status, details):
        if status != "IN_PROGRESS":
            ENDED[self.id] = (status, details.get("reason"))
        self.status = status

class Jobs:
    # Lists at most `page` pending jobs, as the service lists a bounded number.
    def __init__(self, jobs, page=10):
        self.jobs, self.page, self.lists = jobs, page, 0
    def changed(self):
        return True
    def list(self):
        self.lists += 1
        left = [j for j in self.jobs if j.id not in ENDED]
        return [], left[:self.page]

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

# job_cbk ends "mine-1" itself, keeps "mine-keep" pending, refuses the rest, raises on "bad"
calls = []
def cbk(job):
    calls.append(job.id)
    if job.document.get("operation") == "bad":
        raise ValueError("cannot parse")
    if job.id == "mine-1":
        job.update("SUCCEEDED", {"reason": "done by the app"})
    return job.id.startswith("mine")
ENDED.clear()
jobs = Jobs([Job("mine-1", {"operation": "blink"}), Job("x-1", {"operation": "reboot"}),
             Job("mine-keep", {"operation": "blink"}), Job("x-2", {}), Job("x-3", [1, 2]),
             Job("x-4", "text"), Job("x-5", {"operation": 7}), Job("bad", {"operation": "bad"})],
            page=2)
fota.handle_fota_jobs(jobs, job_cbk=cbk)
print("app: ended", sorted(ENDED.items()))
print("app: lists", jobs.lists, "calls", calls)
"""


def test_jobs_that_end_meanwhile_are_skipped_and_timeouts_raised(tmp_path):
    fs = device_folder(tmp_path / "fs", APP)
    create_flash(tmp_path / "flash.bin", firmware("1.0.0"))
    # the library compiled from source, as rig.run gives it (frozen on a board: test_heap.py)
    with Device(tmp_path / "flash.bin", fs, echo=None, heapsize="256k") as dev:
        r = dev.run(max_boots=1, timeout=60)
    assert r.exit_reason == "main-returned", r.console
    assert "fota: [check] job cancelled skipped: TerminalStateReached: gone" in r.console
    assert "app: reset needed False" in r.console
    assert "app: callback got ['other']" in r.console
    assert "app: raised Timeout" in r.console
    # Jobs job_cbk does not take end REJECTED, whatever page of the list they are on; the
    # ones it takes are left to it and offered once.
    ended = ("app: ended [('bad', ('REJECTED', 'job_cbk failed: cannot parse')), "
             "('mine-1', ('SUCCEEDED', 'done by the app')), "
             "('x-1', ('REJECTED', 'unsupported operation: reboot')), "
             "('x-2', ('REJECTED', 'unsupported operation: (none)')), "
             "('x-3', ('REJECTED', 'job document is not a JSON object')), "
             "('x-4', ('REJECTED', 'job document is not a JSON object')), "
             "('x-5', ('REJECTED', 'unsupported operation: 7'))]")
    assert ended in r.console, r.console
    # pages of two: [mine-1 x-1] [mine-keep x-2] [mine-keep x-3] ... [mine-keep bad] [mine-keep]
    assert "app: lists 7 calls ['mine-1', 'x-1', 'mine-keep', 'x-2', 'x-5', 'bad']" in r.console, r.console
