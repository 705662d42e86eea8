"""The package's own calls, without the jobs loop (docs/device-api.md, "Functions"): an
application that downloads an image with fota.update(), marks it with fota.test(), resets, and
confirms it on the trial boot with fota.confirm()."""

from __future__ import annotations

import json
import re

from tests.device.rig import firmware

MAIN = """
import json, fota, machine
from fota import clock
if fota.testing():
    print("app: trial", fota.version(), fota.app_version(), fota.testing())
    fota.confirm()
    print("app: confirmed", fota.version(), fota.testing())
else:
    clock.ready("")
    doc = json.loads(open("doc.json").read())
    try:  # the CA given is the one used: not the device folder's
        fota.update(doc, ca=open("rogue.der", "rb").read())
    except fota.core.FotaError as e:
        print("app: other CA:", e.step, e.reason)
    seen = []
    v = fota.update(doc, progress=lambda done, state=None: seen.append(done))
    print("app: updated", fota.version(), v, json.dumps(seen))
    print("app: clock", machine.freq())  # fota.update() ran faster, and put the clock back
    fota.test(doc, v)
    fota.reset()
"""


def test_update_test_and_confirm_called_by_the_application(rig, pki):
    r = rig()
    image = firmware("2.0.0", size=300_000)
    path = r.folder / "new.bin"
    path.write_bytes(image)
    r.cloud.upload(path, f"fw/{r.thing}-new.bin")
    import hashlib

    doc = {"operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(image).hexdigest(),
           "bc_size": len(image), "bc_url": r.cloud.presign(f"fw/{r.thing}-new.bin", 600)}
    (r.fs / "doc.json").write_text(json.dumps(doc))
    (r.fs / "main.py").write_text(MAIN)
    (r.fs / "rogue.der").write_bytes(pki["ca_der"].read_bytes())  # not the stand-in's CA
    before = r.boot_slot()
    result = r.run(max_boots=3)
    assert result.exit_reason == "main-returned", result.console
    assert r.version() == "2.0.0" and r.boot_slot() != before, result.console
    updated = re.search(r"app: updated 1\.0\.0 2\.0\.0 (\[.*\])", result.console)
    assert updated, result.console
    # progress(done) every 64 KB safely in flash (core.PROGRESS_EVERY), whole sectors
    assert json.loads(updated.group(1)) == [65536, 131072, 196608, 262144], result.console
    assert "app: trial 2.0.0 none True" in result.console
    assert "app: confirmed 2.0.0 False" in result.console
    assert result.boot_count == 2
    assert "app: clock 160000000" in result.console and "CPU clock 240 MHz, from 160" in result.console
    assert "app: other CA: download" in result.console, result.console
    # no fota.on_progress set: nothing is called, nothing fails
    assert "fota: [download] " in result.console and "on_progress failed" not in result.console
