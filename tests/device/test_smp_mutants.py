"""lib/fota/smp.py's Smp.upload in MicroPython, with the request and its answer replaced by a
fake MCU's answer map: the offset the MCU answers is where the next byte goes, and an answer
without an integer offset fails the upload with SmpError (never a crash further on)."""

from __future__ import annotations

from tests.device.mpy import run_json

UPLOAD = """
import json
from fota import smp
s = smp.Smp(None)
out = []
for answer in %s:
    s.request = lambda *a, **k: answer
    try:
        out.append(["ok", s.upload(0, b"x" * 32, 1000)])
    except smp.SmpError as e:
        out.append(["SmpError", str(e)])
print(json.dumps(out))
"""


def test_an_upload_answer_without_an_integer_offset_fails_the_upload():
    answers = "[{'rc': 0, 'off': 32}, {'off': 0}, {'rc': 0}, {'off': None}, {'off': '32'}, {'off': 32.0}, " \
              "{'off': b'32'}, {'off': [32]}, {'off': True}]"
    got = run_json(UPLOAD % answers)
    refused = ["SmpError", "upload answer has no offset"]
    # MicroPython's True is no int (py/objbool.c): a CBOR true is no offset either
    assert got == [["ok", 32], ["ok", 0]] + [refused] * 7


def test_an_upload_answer_with_a_negative_offset_fails_the_upload():
    """A CBOR negative integer is an int, but no byte of an image: -1 is refused, 0 is the
    start (both sides of the bound)."""
    got = run_json(UPLOAD % "[{'off': -1}, {'off': 0}, {'off': -1000000}]")
    assert got == [["SmpError", "upload answer has offset -1"], ["ok", 0],
                   ["SmpError", "upload answer has offset -1000000"]]
