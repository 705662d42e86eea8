"""Heap discipline of the device code: buffers before TLS sessions change hands, one block of
memory per MQTT stream block, a self-test that allocates what it claims."""

from __future__ import annotations

import json
import os
import uuid

from tests.device.mpy import run, run_json
from tests.device.rig import firmware

# An application that reports, at the moment the slot writer is made and the moment the HTTPS
# download opens, whether the MQTT session is still open.
ORDER = """
import fota
from fota import install as fotaupdate, otaslot
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs

conn = Connection(load_config())
conn.connect()
jobs = Jobs(conn)
_init = otaslot.SlotWriter.__init__
def init(self, *a, **kw):
    print("app: slot writer, mqtt open:", conn.connected())
    _init(self, *a, **kw)
otaslot.SlotWriter.__init__ = init
_open = fotaupdate.File.open
def open_(self, *a, **kw):
    print("app: https, mqtt open:", conn.connected())
    return _open(self, *a, **kw)
fotaupdate.File.open = open_
print("app: reset needed", fota.handle_fota_jobs(jobs, force=True, auto_reset=False))
"""


def test_update_buffers_come_before_mqtt_closes_and_https_after(rig):
    # On a board the heap grows out of the RAM TLS needs: the writer's buffers and hashes are
    # allocated while the MQTT session still holds its TLS buffers, then it closes, then
    # HTTPS opens into the RAM it freed.
    r = rig(app=ORDER)
    r.publish(firmware("1.0.1"))
    result = r.run(max_boots=1)
    lines = [ln for ln in result.console.splitlines() if ln.startswith("app: ")]
    assert lines == ["app: slot writer, mqtt open: True", "app: https, mqtt open: False",
                     "app: reset needed True"], result.console


STREAM = """
import json, micropython, gc
from fota.awsiot import Connection, load_config
from fota.streams import StreamFile, BLOCK
conn = Connection(load_config())
conn.connect()
sf = StreamFile(conn, STREAM_ID, 0)
r = sf.open(0)
buf = bytearray(1000)  # reads do not line up with blocks
got = r.readinto(buf)
gc.collect()
first, before = r.next, micropython.mem_total()
while True:
    k = r.readinto(buf)
    if not k:
        break
    got += k
print(json.dumps([got, (micropython.mem_total() - before) // (r.next - first)]))
"""


def test_stream_blocks_are_read_in_place(rig):
    # Per block, what is allocated is the MQTT message umqtt.simple reads (one block of raw
    # CBOR bytes) and call frames: under two blocks' worth. Base64 JSON, parsed and decoded
    # into copies, took over six.
    r = rig()
    data = os.urandom(100 * 4096 + 123)
    path = r.folder / "stream.bin"
    path.write_bytes(data)
    key = f"fw/{r.thing}-stream.bin"
    r.cloud.upload(path, key)
    stream = f"S-{uuid.uuid4().hex[:8]}"
    r.cloud.create_stream(stream, [(0, key)], "heap test")
    env = {"MICROPYPATH": os.pathsep.join([str(r.fs / "lib"), ".frozen"])}
    got, per_block = run_json(f"STREAM_ID = {stream!r}\n" + STREAM, cwd=r.fs, env=env)
    assert got == len(data)
    assert per_block < 2 * 4096, per_block


SELFTEST = """
import gc, json
from fota import selftest
class Jobs:
    def list(self):
        return [], []
holes = []
try:
    while True:  # fill the heap, then free every other piece: free bytes, all in small holes
        holes.append(bytearray(400))
except MemoryError:
    pass
for i in range(0, len(holes), 2):
    holes[i] = None
gc.collect()
free = gc.mem_free()
print(json.dumps([free, selftest.run(Jobs())]))
"""


def test_self_test_allocates_the_memory_it_claims(tmp_path):
    # Plenty of free bytes by gc.mem_free(), none in a piece the size of a sector buffer.
    free, (ok, why) = run_json(SELFTEST, cwd=tmp_path, heapsize="96k")
    assert free > 30000
    assert not ok
    assert why.startswith("heap could not give 30000 bytes in 4096-byte pieces"), why
    healthy = run("import json\nfrom fota import selftest\nclass J:\n    def list(self):\n        return [], []\n"
                  "print(json.dumps(selftest.run(J())))", cwd=tmp_path, heapsize="96k")
    assert json.loads(healthy.stdout.strip().splitlines()[-1]) == [True, "ok"]


def readme_budget_kb() -> int:
    """The heap budget of a whole job cycle with the library in flash, as the documentation's
    figures (docs/figures.md) give it."""
    import re

    from tests.device.rig import ROOT

    row = next(ln for ln in (ROOT / "docs" / "figures.md").read_text().splitlines()
               if ln.startswith("| heap for a whole job cycle"))
    return int(re.search(r"budget (\d+) KB", row).group(1))


def test_whole_cycle_fits_the_budget_the_readme_gives(rig):
    # MQTT, Jobs API, a 1.5 MB download, trial boot with the self-test, confirm: with the
    # library in flash (ROMFS here, frozen on a board) and no more heap than docs/figures.md says.
    from tests.device import romlib
    from tests.device.rig import ONCE

    r = rig()
    app = ONCE + "print('app: library', fota.__file__)\n"
    image_kb = -(-romlib.install(r.fs, app) // 1024) + 1  # the image's bytes: a board has them in flash
    job = r.publish(firmware("1.0.1", size=1_500_000))
    result = r.run(heapsize=f"{readme_budget_kb() + image_kb}k")
    assert result.exit_reason == "main-returned", result.console
    assert "app: library /rom/fota/__init__.mpy" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"
