"""lib/fota/apps.py, start: an application that carries its own fota package leaves none of its
modules behind in sys.modules, also those the library had not loaded yet: the FOTA job that
comes later loads the library's fota.install, not the application's."""

from __future__ import annotations

from tests.device.test_bounds import mp

RUN = """
import sys
from fota import apps
apps.mounted, apps.where = 0, WHERE
app = apps.start(lambda why: out("rejected"))
theirs = app.THEIRS
from fota import install
out([theirs, hasattr(install, "THEIRS"), hasattr(install, "update"),
     sorted(k for k in sys.modules if k.startswith("fota.") and hasattr(sys.modules[k], "THEIRS"))])
"""


def test_the_applications_own_fota_modules_leave_sys_modules(tmp_path):
    (tmp_path / "fota").mkdir()
    (tmp_path / "fota" / "__init__.py").write_text("")
    (tmp_path / "fota" / "install.py").write_text("THEIRS = 1\n")
    (tmp_path / "app.py").write_text("from fota import install\nTHEIRS = install.THEIRS\n")
    assert mp(RUN.replace("WHERE", repr(str(tmp_path)))) == [1, False, True, []]
