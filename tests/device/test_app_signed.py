"""A device with a signer key applies the firmware's rules to applications: only releases
signed with its key, carrying their VERSION, newer than the running application."""

import json

import pytest

from tests.device import appimage
from tests.device.rig import ONCE
from tests.device.test_apps import CONFIRMED, GOOD, publish_app, record
from tests.device.test_signed import KEY, OTHER, pem, sig
from fotatools.provisioning import signer_der


def signed_seeded(rig):
    r = rig(app=ONCE)
    (r.fs / "app0").mkdir()
    (r.fs / "app0" / "app.py").write_text("VERSION = '2.0.0'\n" + GOOD)
    (r.fs / "apps.json").write_text(json.dumps(CONFIRMED))
    (r.fs / "certs" / "signer.der").write_bytes(signer_der(pem(KEY)))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["signer"] = "certs/signer.der"
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r


def test_signed_newer_application_is_accepted(rig):
    r = signed_seeded(rig)
    new = appimage.app("2.1.0")
    job = publish_app(r, new, bc_sig=sig(new))
    result = r.run()
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert record(r)["slot"] == 1 and record(r)["versions"][1] == "2.1.0"


NO_VERSION = appimage.build({"app.py": GOOD})

CASES = [
    ("unsigned", appimage.app("2.1.0"), None, "unsigned image refused: this device requires bc_sig"),
    ("other key", appimage.app("2.1.0"), lambda im: sig(im, OTHER), "signature does not verify"),
    ("downgrade", appimage.app("1.9.0"), sig,
     "version 1.9.0 is not newer than the running application 2.0.0"),
    ("replay", appimage.app("2.0.0"), sig,
     "version 2.0.0 is not newer than the running application 2.0.0"),
    ("no VERSION in the image", NO_VERSION, sig, "a signed application must carry its VERSION file"),
]


@pytest.mark.parametrize("name, image, signer, reason", CASES, ids=[c[0] for c in CASES])
def test_refused(rig, name, image, signer, reason):
    r = signed_seeded(rig)
    job = publish_app(r, image, **({"bc_sig": signer(image)} if signer else {}))
    result = r.run(max_boots=3)
    ex = r.execution(job)
    assert ex.status == "FAILED" and ex.status_details["reason"] == reason, (ex, result.console)
    assert record(r) == CONFIRMED and result.boot_count == 1
