"""lib/fota/romimage.py, check_mpy: a .mpy file with native code for an architecture number past
the ones MicroPython names is refused with that number ("arch 13"), not an IndexError."""

from __future__ import annotations

import json

from tests.device.mpy import run_json
from tests.device.test_romimage import MPY


def test_an_unnamed_native_architecture_is_refused_by_number():
    # the unix port's VM: bytecode 6, x64 (arch 2), sub-version 3; rv64imc is the last named (12)
    heads = [[77, 6, 12 << 2 | 3, 31], [77, 6, 13 << 2 | 3, 31], [77, 6, 63 << 2 | 1, 31]]
    out = run_json(MPY.replace("HEADS", json.dumps(heads)))
    assert out == ["m.mpy: native code for rv64imc.3, this firmware runs x64.3",
                   "m.mpy: native code for arch 13.3, this firmware runs x64.3",
                   "m.mpy: native code for arch 63.1, this firmware runs x64.3"]
