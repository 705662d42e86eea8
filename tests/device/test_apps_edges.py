"""lib/fota/apps.py's admit(): the version an application image is taken as, in MicroPython."""

from __future__ import annotations

from tests.device.mpy import run_json

ADMIT = """
import json
from fota import apps
out = [apps.version()]
for own, said, signed in %s:
    try:
        out.append(apps.admit(own, said, signed, lambda a, b: a > b))
    except ValueError as e:
        out.append("error: %%s" %% e)
print(json.dumps(out))
"""


def test_the_version_an_image_is_taken_as(tmp_path):
    cases = [("1.0", "1.1", False), ("1.0", None, False), (None, "2.0", False), (None, None, False),
             ("", "", False), ("1.0", "1.0", False), ("", "2.0", False), (None, None, True),
             ("3.0", None, True), ("3.0", "3.0", True), ("3.0", "3.1", True)]
    got = run_json(ADMIT % repr(cases), cwd=tmp_path)
    assert got == ["none",  # no application yet: any signed version is newer
                   "error: the image is version 1.0, the document says 1.1", "1.0", "2.0", "unknown",
                   "unknown", "1.0", "2.0", "error: a signed application must carry its VERSION file",
                   "3.0", "3.0", "error: the image is version 3.0, the document says 3.1"]
