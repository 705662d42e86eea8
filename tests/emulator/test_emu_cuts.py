"""Several power cuts in one run: a cut can hit the recovery from the cut before."""

from __future__ import annotations

import pytest

WRITER = """
import esp32
p = esp32.Partition("ota_1")
for k in range(4):
    p.writeblocks(k, bytes([k]) * 4096)   # an erase and a write each
"""


def test_two_cuts_in_one_run(board):
    result = board.run(WRITER, cut_at=[3, 5], max_boots=5)
    assert result.flash_stats["cuts"] == 2, result.console
    assert [b.end for b in result.boots] == ["power-cut", "power-cut", "main-returned"], result.console
    assert [b.reset_cause_name for b in result.boots] == ["PWRON_RESET"] * 3


@pytest.mark.parametrize("bad", [[5, 3], [0, 4], [4, 4]])
def test_cut_points_must_increase_from_one(board, bad):
    with pytest.raises(ValueError):
        board.run(WRITER, cut_at=bad)
