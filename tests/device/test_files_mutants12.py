"""lib/fota/files.py, _one: after a power cut, a file of a job goes on from the step its record
says (the record's "file", for this file's id): a file activated already is not downloaded again,
only finished; a download resumes from the offset recorded. A record of another file, or none,
starts this one over from its first byte."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import files, plan
from fota.core import FotaError
calls = []
class T:
    def create(self, f, resume):
        calls.append(["create", resume])
        raise OSError(5)  # the download itself is not what this looks at
    def abort(self):
        calls.append(["abort"])
    def activate(self, f, version):
        calls.append(["activate", version])
    def state(self, f):
        calls.append(["state"])
        return "v2", False
f = plan.OtaFile(2, 100000, b"", "x.bin", None, "https://h/x.bin")
rec = {"job": "j-1", "step": "files", "slot": -1, "tries": 1, "files": {}, "file": CUR}
try:
    got = files._one(None, f, T(), None, rec)
except FotaError as e:
    got = e.step
out([got, calls, rec["file"]["step"]])
"""

DOWNLOAD = [["create", 0], ["abort"]]


@pytest.mark.parametrize("cur,want", cases([
    ("activated-before-the-cut", {"id": 2, "step": "activate", "done": 0, "version": "v2"},
     ["v2", [["activate", "v2"], ["state"]], "trial"]),
    ("on-trial-before-the-cut", {"id": 2, "step": "trial", "done": 0, "version": "v2"},
     ["v2", [["state"]], "trial"]),
    ("downloading-before-the-cut", {"id": 2, "step": "download", "done": 16384},
     ["download", [["create", 16384], ["abort"]], "download"]),
    ("another-files-record", {"id": 3, "step": "activate", "done": 0, "version": "v3"},
     ["download", DOWNLOAD, "download"]),
    ("no-record", None, ["download", DOWNLOAD, "download"])]))
def test_a_file_goes_on_from_the_step_its_record_says(cur, want, tmp_path):
    assert mp(RUN.replace("CUR", repr(cur)), cwd=tmp_path) == want
