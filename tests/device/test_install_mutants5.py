"""lib/fota/install.py, update: a failure while it sets up (the plan, the slot writer and its
buffers, the transport) is the step "check", with the document's own words for a DocError and
the exception's text, or its name when it has none (a MemoryError, a bare OSError), for
anything else: never an empty reason."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import install, otaslot
from fota.core import FotaError
from fota.plan import DocError
class Plan:
    kind, sig, slot, size, stream = "fota", None, 1, 1000, None
def plan_for(doc):
    if WHERE == "plan":
        raise ERROR
    return Plan()
def writer(part, size, start, sha256=False):
    if WHERE == "writer":
        raise ERROR
    return None  # no writer to abort: the source fails next
def source(p, ca, conn):
    raise ERROR
install.plan_for = plan_for
install.signer_key = lambda: None
install.source = source
otaslot.slots = lambda: ["p0", "p1"]
otaslot.SlotWriter = writer
try:
    install.update({})
    out("no error")
except FotaError as e:
    out([e.step, e.reason])
"""


@pytest.mark.parametrize("where,error,want", cases([
    ("memory-error-in-the-writer", "writer", "MemoryError()", "MemoryError"),
    ("bare-oserror-in-the-transport", "source", "OSError()", "OSError"),
    ("oserror-with-errno", "source", "OSError(113)", "[Errno 113] EHOSTUNREACH"),
    ("doc-error", "plan", "DocError('bc_idx 2: no such OTA slot (0..1)')", "bc_idx 2: no such OTA slot (0..1)")]))
def test_a_failure_while_setting_up_names_its_reason(where, error, want):
    got = mp(RUN.replace("WHERE", repr(where)).replace("ERROR", error))
    assert got == ["check", want]
