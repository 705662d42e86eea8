"""lib/fota/apps.py, start: an application that carries a module with one of the library's
top-level names imports its own, and the library's modules come back into sys.modules after
(the device loop goes on with the library's fota, not the application's)."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
import sys
import fota
from fota import apps
before = sys.modules["fota"]
apps.mounted, apps.where = 0, WHERE
app = apps.start(lambda why: out("rejected"))
out([app.THEIRS, sys.modules["fota"] is before, "fota.apps" in sys.modules, hasattr(sys.modules["fota"], "MINE")])
"""


def test_the_library_modules_come_back_after_the_application_is_imported(tmp_path):
    (tmp_path / "fota.py").write_text("MINE = 1\n")
    (tmp_path / "app.py").write_text("import fota\nTHEIRS = fota.MINE\n")
    assert mp(RUN.replace("WHERE", repr(str(tmp_path)))) == [1, True, True, False]
