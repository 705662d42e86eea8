"""lib/fota/target.py, SmpTarget.state: after the reset request, only an image pending in a slot
that does not run (the secondary: MCUboot swaps it in at the reset) says the MCU has not reset
yet; the running image (active) is the one the MCU came back with, whatever else it is marked
with, and the target reads it at once instead of waiting boot_ms for a reset that is done."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, tgt


@pytest.mark.parametrize("images,want", cases([
    ("running-image-also-marked-pending",
     [{"slot": 0, "version": "2.0.0", "active": True, "pending": True},
      {"slot": 1, "version": "1.0.0", "confirmed": True}],
     [["2.0.0", True], 1]),
    ("secondary-still-pending",
     [{"slot": 0, "version": "1.0.0", "active": True, "confirmed": True},
      {"slot": 1, "version": "2.0.0", "pending": True}],
     ["TargetError: secondary does not reset: image 2.0.0 is still pending after 20000 ms", None])]))
def test_only_an_image_pending_outside_the_running_slot_means_no_reset_yet(images, want):
    got = tgt(f"""
f = Smp()
asked = [0]
def images():
    asked[0] += 1
    return {images!r}
f.images = images
t = smp_target(f)
try:
    out([list(t.state(F())), asked[0]])
except Exception as e:
    out(["%s: %s" % (type(e).__name__, e), None])
""")
    assert got == want
