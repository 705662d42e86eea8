"""lib/fota/delta.py, Patcher.open: a patch file whose size is not the document's is refused,
and the stream opened for it is closed (an HTTPS socket left open would hold its TLS buffers
while the retry opens another)."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp
from tests.device.test_inflate_mutants4 import STREAM


@pytest.mark.parametrize("total,want", cases([
    ("outside-one-more", 1001, ["DeltaError: server has 1001 bytes, document says 1000", 1, 1]),
    ("outside-one-less", 999, ["DeltaError: server has 999 bytes, document says 1000", 1, 1])]))
def test_a_patch_source_of_the_wrong_size_is_closed(total, want):
    got = mp(f"""
from fota import delta
delta.appimage.length = lambda base: (4000,)  # the running image's length, without a slot
{STREAM.format(total=total)}
out([error(delta.Patcher(Stream, None, 4000, 1000).open, 0), len(opened), len(closed)])
""")
    assert got == want
