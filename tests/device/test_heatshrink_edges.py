"""lib/fota/heatshrink.py's parameters on both sides of their bounds, in MicroPython."""

from __future__ import annotations

from tests.device.mpy import run_json

PARAMS = """
import json
from fota import heatshrink, deltaplain
out = []
for w, l in %r:
    try:
        heatshrink.Decoder(None, w, l, deltaplain)
        out.append("ok")
    except heatshrink.HeatshrinkError as e:
        out.append(str(e))
print(json.dumps(out))
"""


def test_window_and_lookahead_both_sides():
    cases = [(4, 3), (3, 3), (15, 14), (16, 4), (8, 3), (8, 2), (8, 7), (8, 8), (4, 4)]
    got = run_json(PARAMS % cases)
    bad = "bad heatshrink parameters: window %d bits, lookahead %d bits"
    assert got == ["ok", bad % (3, 3), "ok", bad % (16, 4), "ok", bad % (8, 2), "ok", bad % (8, 8), bad % (4, 4)]
