"""Starting the stand-in (tools/fotatools/cloud/daemon.py start) when its process exits at once:
the error names the exit code and the log, and quotes the log's last 3000 characters, so that a
user sees why without opening it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fotatools.cloud import daemon


def test_a_stand_in_that_exits_at_start_quotes_the_last_3000_characters_of_its_log(tmp_path: Path):
    paths = daemon.Paths(tmp_path)
    paths.root.mkdir(parents=True)
    # what earlier runs logged: numbered lines, so that every cut is a different text
    paths.log.write_text("".join(f"earlier run, line {i}\n" for i in range(400)))
    paths.ca.write_text("")  # a file where the CA's folder goes: the stand-in fails at once
    with pytest.raises(daemon.CloudError) as e:
        daemon.start(tmp_path, hosts=[], timeout=30)
    log = paths.log.read_text()
    assert len(log) > 3001 and "FileExistsError" in log
    head, tail = str(e.value).split(" ends with:\n", 1)
    assert re.fullmatch(r"the local cloud exited at start \(code [1-9][0-9]*\); " + re.escape(str(paths.log)),
                        head)
    assert tail == log[-3000:]
