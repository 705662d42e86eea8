"""lib/fota/appwrite.py, du: the space a slot's old files take, which apps.capacity counts as free
for the next image: each file in whole blocks of the filesystem (a byte over a block takes two),
each folder one block more, an empty file none, a folder that is not there nothing."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp


@pytest.mark.parametrize("files,want", cases([
    ("no-folder", None, 0),
    ("empty-file", {"a": 0}, 0),
    ("inside-1-byte", {"a": 1}, 4096),
    ("inside-one-block", {"a": 4096}, 4096),
    ("outside-one-block-and-1-byte", {"a": 4097}, 8192),
    ("two-files", {"a": 1, "b": 4097}, 3 * 4096),
    ("a-file-in-a-folder", {"lib/m": 10}, 2 * 4096)]))
def test_old_files_are_counted_in_whole_blocks(files, want, tmp_path):
    if files is not None:
        for name, size in files.items():
            p = tmp_path / "slot" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x" * size)
    got = mp(f"""
from fota import appwrite
out(appwrite.du({str(tmp_path / "slot")!r}, 4096))
""")
    assert got == want
