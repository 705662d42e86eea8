"""lib/fota/appwrite.py, FolderWriter.finish: an application image that did not all arrive is
refused as short, whatever the document's MD5 (none here), before its files are believed."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import appwrite
w = appwrite.FolderWriter("/nowhere", SIZE)
w.written = WRITTEN
out(error(w.finish, None))
"""


@pytest.mark.parametrize("size,written,want", cases([
    ("nothing", 100, 0, "ImageError: short image: 0 of 100 bytes"),
    ("one-byte-short", 100, 99, "ImageError: short image: 99 of 100 bytes")]))
def test_a_short_application_image_is_refused(size, written, want):
    assert mp(RUN.replace("SIZE", str(size)).replace("WRITTEN", str(written))) == want
