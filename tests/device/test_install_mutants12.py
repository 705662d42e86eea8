"""lib/fota/install.py, _newer: a version may start with a v (or V), dropped before the dotted
numbers are compared: v1.10.0 is newer than 1.9.2, and a version one step older or the same is
not newer."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, mp

RUN = """
from fota import install
e = error(install._newer, {a!r}, {b!r})
out([e, install._newer({a!r}, {b!r}) if e == "ok" else None])
"""


@pytest.mark.parametrize("a,b,want", cases([
    ("v-newer", "v1.10.0", "1.9.2", ["ok", True]),
    ("V-newer", "V2.0", "v1.99", ["ok", True]),
    ("v-the-same", "v1.2.3", "1.2.3", ["ok", False]),
    ("v-older-by-one", "v1.2.2", "V1.2.3", ["ok", False]),
    ("a-v-alone-is-no-version", "v", "1.0", ["SlotError: versions v and 1.0 cannot be ordered (use dotted numbers)", None])]))
def test_a_leading_v_is_dropped_before_versions_are_compared(a, b, want):
    assert mp(RUN.format(a=a, b=b)) == want
