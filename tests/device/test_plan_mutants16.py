"""lib/fota/plan.py, _codec: a delta's bc_base is the base image's SHA-256 as 64 hex digits,
in either case (kept in lower case): 64 characters that are not all hex digits are refused
before anything is downloaded."""

from __future__ import annotations

import json

import pytest

from tests.device.test_bounds import DELTA, SLOT, cases, mp


@pytest.mark.parametrize("base,want", cases([
    ("inside-hex", "0123456789abcdef" * 4, "0123456789abcdef" * 4),
    ("inside-upper-hex", "ABCDEF" + "f" * 58, "abcdef" + "f" * 58),
    ("outside-g", "g" + "f" * 63, None),
    ("outside-space", "f" * 63 + " ", None),
    ("outside-non-ascii", "f" * 63 + "\u0660", None)]))  # ARABIC-INDIC DIGIT ZERO
def test_bc_base_is_64_hex_digits(base, want):
    doc = dict(DELTA, bc_base=base)
    got = mp(f"""
from fota.plan import plan
doc = json.loads({json.dumps(json.dumps(doc))})
try:
    out(plan(doc, 2, 0, 1, {SLOT}).args["base"])
except Exception as e:
    out("%s: %s" % (type(e).__name__, e))
""")
    assert got == (want or "DocError: bc_base must be the base image's SHA-256 as 64 hex digits")
