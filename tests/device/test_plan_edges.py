"""lib/fota/plan.py in MicroPython: show() (a document's value quoted in a reason, whole up to 40 characters
and cut after them), base() of a plan that is not a delta, fileid of a boolean."""

from __future__ import annotations

import json

from tests.device.mpy import run_json


def test_a_value_is_quoted_whole_up_to_40_characters():
    got = run_json("import json\nfrom fota import plan\n"
                   "print(json.dumps([plan.show(v) for v in ['x' * 39, 'x' * 40, 'x' * 41, 'y' * 5000, 5, [1, 2], '']]))")
    assert got == ["x" * 39, "x" * 40, "x" * 40 + "... (41 characters)", "y" * 40 + "... (5000 characters)",
                   "5", "[1, 2]", ""]


def test_base_leaves_a_plan_that_is_not_a_delta_as_it_is():
    # base() is for delta plans: a whole image or a deflated one has no base to compare
    # (args None, or the codec's own), and comes back untouched whatever the device runs.
    doc = {"operation": "fota", "bc_idx": 1, "bc_crc": "0" * 32, "bc_size": 1000,
           "bc_url": "https://h/fw.bin", "version": "1.0.1"}
    deflate = dict(doc, bc_enc="deflate", bc_wbits=12, bc_zsize=900)
    got = run_json("import json\nfrom fota import plan\nout = []\n"
                   f"for d in json.loads({json.dumps(json.dumps([doc, deflate]))}):\n"
                   "    p = plan.base(plan.plan(d, 2, 0, 1, 0x180000), 'ab' * 32)\n"
                   "    out.append([p.codec, p.args, p.url, p.xsize])\n"
                   "print(json.dumps(out))")
    assert got == [[None, None, "https://h/fw.bin", 1000], ["deflate", {"wbits": 12}, "https://h/fw.bin", 900]]


def test_a_fileid_of_true_or_false_is_refused():
    # JSON true is not the file id 1. (MicroPython's bool is no subclass of int, unlike
    # CPython's: isinstance(True, int) is already False there.)
    sig = "MEUCIQ=="
    docs = [{"afr_ota": {"protocols": ["HTTP"], "streamname": "s", "files": [
        {"fileid": fid, "filesize": 1000, "update_data_url": "https://h/fw.bin", "sig-sha256-ecdsa": sig}]}}
        for fid in (True, False, 1)]
    got = run_json("import json\nfrom fota import plan\nout = []\n"
                   f"for d in json.loads({json.dumps(json.dumps(docs))}):\n"
                   "    try:\n"
                   "        out.append([f.id for f in plan.files(d)])\n"
                   "    except plan.DocError as e:\n"
                   "        out.append(str(e))\n"
                   "print(json.dumps(out))")
    assert got == ["fileid must be an integer 0..255"] * 2 + [[1]]
