"""A signed fleet goes back to its older code with `fota rollback`.

The board has a signer key, so it takes only images signed with the fleet's key and of a
version newer than the one it runs. It runs B (1.1.0); `fota rollback A.bin --version 1.2.0
--sign KEY --thing T` makes A's code into 1.2.0 and publishes it: the board runs A's code
(its frozen `checks.py`, which the trial boot runs) and reports 1.2.0. A itself, or the
rollback unsigned, is still refused."""

from __future__ import annotations

import json
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.flash import Flash
from emulator.image import read_payload
from fotatools import cli
from fotatools.provisioning import signer_der
from tests.device.rig import firmware

KEY = ec.generate_private_key(ec.SECP256R1())
KEY_PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())

# The firmware's own self-test (tests/device/rig.py ONCE runs `checks.run` on a trial boot):
# it leaves on the filesystem which code ran.
CHECKS = """
CODE = %r

def run(jobs):
    with open("/ran.txt", "w") as f:
        f.write(CODE)
    return True, ""
"""
CODE_A = {"checks.py": CHECKS % "A"}
CODE_B = {"checks.py": CHECKS % "B"}


def signed_board(rig):
    """A board of the signed fleet, running B (1.1.0)."""
    r = rig(image=firmware("1.1.0", payload=CODE_B))
    (r.fs / "certs" / "signer.der").write_bytes(signer_der(KEY_PEM))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["signer"] = "certs/signer.der"
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r


def fota(home, *args) -> int:
    return cli.main(["--home", str(home), *map(str, args)])


@pytest.fixture
def old_image(tmp_path):
    path = tmp_path / "micropython-1.0.0.bin"
    path.write_bytes(firmware("1.0.0", payload=CODE_A))
    key = tmp_path / "fleet.pem"
    key.write_bytes(KEY_PEM)
    return path, key


def test_a_signed_fleet_goes_back_to_its_older_code(rig, cloud, old_image, tmp_path, capsys):
    _, home = cloud
    a, key = old_image
    r = signed_board(rig)
    job = f"rb-{uuid.uuid4().hex[:8]}"
    assert fota(home, "rollback", a, "--version", "1.2.0", "--sign", key, "--out",
                tmp_path / "rb", "--thing", r.thing, "--job-id", job) == 0, \
        capsys.readouterr().err
    r.run()
    ex = r.execution(job)
    assert ex.status == "SUCCEEDED", ex.status_details
    assert (ex.status_details["version"], ex.status_details["from_version"]) == ("1.2.0", "1.1.0")
    assert r.version() == "1.2.0"
    running = r.running_slot_bytes()
    assert read_payload(running) == CODE_A  # A's code, under the new version
    assert r.file("/ran.txt") == b"A"  # and it is A's code that ran its self-test
    assert Flash(r.flash).app_desc(r.boot_slot())["project_name"] == "micropython"


@pytest.mark.parametrize("how,reason", [
    ("older", "version 1.0.0 is not newer than the running 1.1.0"),
    ("unsigned", "unsigned image refused: this device requires bc_sig"),
])
def test_the_no_downgrade_rule_still_holds(rig, cloud, old_image, tmp_path, capsys, how, reason):
    _, home = cloud
    a, key = old_image
    r = signed_board(rig)
    before = r.running_slot_bytes()
    job = f"rb-{uuid.uuid4().hex[:8]}"
    if how == "older":  # A as it is, signed with the fleet's key: a downgrade
        assert fota(home, "build", a, "--sign", key, "--out", tmp_path / "a") == 0
        release = tmp_path / "a" / "micropython-1.0.0.json"
        assert fota(home, "publish", release, "--thing", r.thing, "--job-id", job) == 0
    else:  # the rollback, not signed
        assert fota(home, "rollback", a, "--version", "1.2.0", "--out", tmp_path / "rb",
                    "--thing", r.thing, "--job-id", job) == 0
        assert "NOT signed" in capsys.readouterr().out
    r.run(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert reason in ex.status_details["reason"], ex.status_details
    assert r.version() == "1.1.0" and r.running_slot_bytes() == before
