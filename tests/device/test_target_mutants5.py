"""lib/fota/target.py, SmpTarget._admit: an MCU that lists its running image without a version
(nothing flashed with one yet) takes any MCUboot image, as if it ran 0; one that runs a version
still refuses an image that is not newer."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, tgt


@pytest.mark.parametrize("running,want", cases([
    ("no-version", {"slot": 0, "active": True}, ["ok", 100]),
    ("same-version", {"slot": 0, "version": "1.2.3", "active": True},
     ["TargetError: version 1.2.3 is not newer than the MCU's 1.2.3", 0]),
    ("older-version", {"slot": 0, "version": "1.2.2", "active": True}, ["ok", 100])]))
def test_an_mcu_with_no_version_takes_the_image(running, want):
    got = tgt(f"""
f = Smp(lambda off, k: off + k)
f.images = lambda: [{running!r}]
t = smp_target(f)
t.create(F())
image = bytearray(100)
struct.pack_into("<I", image, 0, target.MCUBOOT_MAGIC)
struct.pack_into("<BBHI", image, 20, 1, 2, 3, 0)  # ih_ver 1.2.3
out([error(t.write, 0, image), t.off])
""")
    assert got == want
