"""lib/fota/install.py: plan_for checks a delta's base against the running image while it plans
(before update() opens a slot), and signer_key takes the key the application set in code
(fota.signer) over the one config.json names."""

from __future__ import annotations

import pytest

from tests.device.test_bounds import DELTA, cases, mp

RUNS = "ab" * 32

PLAN = """
from fota import install, otaslot, appimage
class P:
    def __init__(self, i):
        self.i = i
    def ioctl(self, op, arg):
        return 0x180
P0, P1 = P(0), P(1)
class Partition:
    RUNNING = 0
    def __init__(self, which):
        pass
    def get_next_update(self):
        return P1
install.Partition = Partition
otaslot.slots = lambda: [P0, P1]
otaslot.running = lambda: P0
otaslot.slot_index = lambda p: p.i
appimage.sha256 = lambda p: RUNS
def planned():
    p = install.plan_for(DOC)
    return [p.codec, p.url, p.slot]
try:
    out(planned())
except Exception as e:
    out("%s: %s" % (type(e).__name__, e))
"""


@pytest.mark.parametrize("doc,want", cases([
    ("its-base", dict(DELTA, bc_base=RUNS), ["delta", "https://h/fw.bin", 1]),
    ("another-base", DELTA, "DocError: the patch is for base image %s; this device runs %s" % ("0" * 64, RUNS)),
    ("another-base-with-full", dict(DELTA, bc_full="https://h/full.bin"), [None, "https://h/full.bin", 1])]))
def test_a_delta_for_another_base_is_refused_or_replaced_while_planning(doc, want):
    got = mp(PLAN.replace("RUNS", repr(RUNS)).replace("DOC", repr(doc)))
    assert got == want


GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
P256 = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
G = b"\x04" + GX.to_bytes(32, "big") + GY.to_bytes(32, "big")
MINUS_G = b"\x04" + GX.to_bytes(32, "big") + (P256 - GY).to_bytes(32, "big")


@pytest.mark.parametrize("code,config,want", cases([
    ("code-wins", G, MINUS_G, GY), ("config-only", None, MINUS_G, P256 - GY), ("none", None, None, None)]))
def test_the_signer_set_in_code_wins_over_the_config_file(code, config, want):
    got = mp(f"""
from fota import install, core
core.signer = {code!r}
install.config_file = lambda key: {config!r} if key == "signer" else None
k = install.signer_key()
out(None if k is None else hex(k[1]))
""")
    assert got == (None if want is None else hex(want))
