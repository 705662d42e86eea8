"""lib/fota/target.py, SmpTarget._send: an upload answer that takes exactly half of the bytes sent
is not short: an MCU that does so every time (more than SHORT times) still takes the image."""

from __future__ import annotations

from tests.device.test_bounds import tgt


def test_an_mcu_taking_exactly_half_of_each_chunk_is_not_too_slow():
    got = tgt("""
taken = []
def take(off, k):
    n = k // 2 if k % 2 == 0 else k  # exactly half of an even chunk, all of an odd one
    taken.append(2 * n == k)
    return off + n
class Big(F):
    size = 2000
t = smp_target(Smp(take))
t.create(Big())
t.new = "2.0.0"  # header read: the version check is not what this tests
def upload():
    t.write(0, bytes(2000))
    while t.fill:
        t._send()
out([error(upload), t.off, taken.count(True) > target.SHORT])
""")
    assert got == ["ok", 2000, True]
