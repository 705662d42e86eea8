"""lib/fota/flow.py, _run: a download that fails its checks leaves a record saying nothing of the
slot is kept (done 0), even when the failure cannot be reported (the broker is down): the retry
of the job downloads the image from its first byte, not from where the bad one stopped."""

from __future__ import annotations

from tests.device.test_bounds import mp
from tests.device.test_flow_mutants6 import FAKES

RUN = FAKES.replace("KIND", '"fota"').replace("UPDATE", "pass") + """
def update(doc, start, progress, conn, disconnect, state):
    progress(65536, [1, 70000])  # a sector's worth written, then the image does not check
    raise core.FotaError("verify", "MD5 mismatch")
Install.update = update
def down(jobs):
    raise OSError("no network")
flow.reconnect = down
why = error(flow._run, Jobs(), Job(), False)
kept = [[r["done"], r["codec"]] for r in saved]
# the board comes back and takes the job again: the retry goes on from what the record says
starts = []
def again(doc, start, progress, conn, disconnect, state):
    starts.append([start, state])
    return "2.0"
Install.update = again
core.load = lambda: saved[-1]
flow.reconnect = lambda jobs: None
flow._run(Jobs(), Job(), False)
out([why, kept, starts])
"""


def test_a_failed_download_records_that_nothing_of_it_is_kept():
    assert mp(RUN) == ["OSError: no network", [[0, None], [65536, [1, 70000]], [0, None]], [[0, None]]]
