"""lib/fota/install.py, update: a failure before any slot writer exists has nothing to abort and
says only why it failed; a writer whose abort itself fails is named in the log ("could not
invalidate the slot"), and the job still fails with the first failure's reason."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import install, otaslot
from fota.core import FotaError
from fota.plan import DocError
logs = []
install.log = lambda step, msg: logs.append([step, msg])
class Plan:
    kind, sig, slot, size, stream = "fota", None, 1, 1000, None
class Writer:
    def abort(self):
        raise OSError(5)
def plan_for(doc):
    if WRITER is None:
        raise DocError("bc_size missing")
    return Plan()
def source(p, ca, conn):
    raise OSError(113)
install.plan_for = plan_for
install.signer_key = lambda: None
install.source = source
otaslot.slots = lambda: ["p0", "p1"]
otaslot.SlotWriter = lambda part, size, start, sha256=False: WRITER
try:
    install.update({})
    out("no error")
except FotaError as e:
    out([e.step, e.reason, logs])
"""


@pytest.mark.parametrize("writer,want", cases([
    ("no-writer-yet", "None", ["check", "bc_size missing", []]),
    ("writer-whose-abort-fails", "Writer()",
     ["check", "[Errno 113] EHOSTUNREACH", [["download", "could not invalidate the slot: [Errno 5] EIO"]]])]))
def test_only_a_writer_that_exists_is_aborted(writer, want):
    assert mp(RUN.replace("WRITER", writer)) == want
