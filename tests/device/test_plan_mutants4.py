"""lib/fota/plan.py, quoted: a name in a reason is quoted whole up to 40 characters; a longer
one is cut to its first 40 and its length said."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp


@pytest.mark.parametrize("n", cases([("inside-40", 40), ("outside-41", 41), ("inside-39", 39)]))
def test_a_quoted_name_keeps_40_characters(n):
    name = "".join(chr(ord("a") + i % 26) for i in range(n))
    got = mp(f"from fota import plan\nout(plan.quoted({name!r}))")
    assert got == repr(name[:40]) + ("... (%d characters)" % n if n > 40 else "")
