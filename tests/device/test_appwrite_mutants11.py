"""lib/fota/appwrite.py, FolderWriter.feed_from: a writer made without a tick (its default, and
apps.writer's) unpacks an application image as one made with a tick does; the tick, when given,
is called once for each folder and file unpacked."""

from __future__ import annotations

import hashlib

import pytest

from tests.device.appimage import build
from tests.device.test_bounds import cases, mp

IMAGE = build({"app.py": "VERSION = '2.0'\n", "VERSION": "2.0", "lib/util.py": "X = 1\n"}, compile_py=False)

RUN = """
import os
from fota import appwrite
ticks = []
w = appwrite.FolderWriter("app1", len(IMAGE), tick=TICK)
w.feed_from(io.BytesIO(IMAGE))
out([w.finish(MD5), sorted(os.listdir("app1")), os.listdir("app1/lib"), len(ticks)])
"""


@pytest.mark.parametrize("tick,ticks", cases([("no-tick", "None", 0), ("tick", "lambda: ticks.append(1)", 4)]))
def test_a_writer_without_a_tick_unpacks_the_image(tick, ticks, tmp_path):
    code = f"IMAGE = {IMAGE!r}\nMD5 = {hashlib.md5(IMAGE).hexdigest()!r}\n" + RUN.replace("TICK", tick)
    assert mp(code, cwd=tmp_path) == ["2.0", ["VERSION", "app.py", "lib"], ["util.py"], ticks]
