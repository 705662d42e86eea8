"""lib/fota/target.py, SmpTarget._create: a create that fails before its upload starts (the MCU
does not answer) leaves the target as a new one holds nothing of this file, whatever the
target's previous file did: the abort that follows (files.py _one) then does what it does for
a new target, not what the previous file's upload would call for."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import cases, tgt


@pytest.mark.parametrize("before", cases([
    ("new-target", 0), ("previous-upload-whole", 100), ("previous-upload-cut-at-50", 50)]))
def test_a_create_the_mcu_does_not_answer_forgets_the_previous_file(before):
    got = tgt(f"""
erased = []
class Mcu(Smp):
    def erase(self):
        erased.append(1)
t = smp_target(Mcu(lambda off, k: off + k))
if {before}:
    t.create(F())
    image = bytearray(100)
    struct.pack_into("<I", image, 0, target.MCUBOOT_MAGIC)
    struct.pack_into("<BBHI", image, 20, 2, 0, 0, 0)  # ih_ver 2.0.0, newer than the MCU's 1.0.0
    t.write(0, image[:{before}])
    while t.fill:
        t._send()
    # the previous file: {before} of 100 bytes on the MCU
del erased[:]
def silent():
    raise smpmod.SmpError("no answer")
t.smp.images = silent
why = error(t.create, F())
t.abort()
out([why, t.off, t.size, len(erased)])
""")
    # as for a new target: no byte of the file, and no erase asked of an MCU that took none of
    # it (it did not answer: an erase would only wait for its SMP timeout)
    assert got == ["TargetError: secondary: no answer", 0, 0, 0]
