"""lib/fota/plan.py's show(): a document's value quoted in a reason, whole up to 40 characters
and cut after them, in MicroPython."""

from __future__ import annotations

from tests.device.mpy import run_json


def test_a_value_is_quoted_whole_up_to_40_characters():
    got = run_json("import json\nfrom fota import plan\n"
                   "print(json.dumps([plan.show(v) for v in ['x' * 39, 'x' * 40, 'x' * 41, 'y' * 5000, 5, [1, 2], '']]))")
    assert got == ["x" * 39, "x" * 40, "x" * 40 + "... (41 characters)", "y" * 40 + "... (5000 characters)",
                   "5", "[1, 2]", ""]
