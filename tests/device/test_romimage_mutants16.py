"""lib/fota/romimage.py, _data: a record of kind 0 among a file's records, before its data,
makes the image refused, named by the file, as one at the top of a folder does: the board
could not open that file (extmod/vfs_rom.c, extract_data stops at kind 0, "corrupt
filesystem", and the file is reported missing). Padding (kind 1) and unknown kinds there are
skipped, as vfs_rom.c skips them."""

from __future__ import annotations

import pytest

from tests.device.test_romimage import file, record, romfs, walk


@pytest.mark.parametrize("before,want", [
    pytest.param(record(0, b""), ["x: corrupt record"], id="corrupt-empty"),
    pytest.param(record(0, b"ab"), ["x: corrupt record"], id="corrupt-2-bytes"),
    pytest.param(record(1, b"ab"), [["x", "data"]], id="padding"),
    pytest.param(record(9, b"ab"), [["x", "data"]], id="unknown-kind")])
def test_a_corrupt_record_before_a_files_data_is_refused(tmp_path, before, want):
    assert walk(tmp_path, romfs(file(b"x", before, record(2, b"data")))) == want
