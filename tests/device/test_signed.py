"""A device with a signer key accepts only signed images of newer versions (ECDSA P-256 over
SHA-256 of the image, as `fota build --sign` makes them): bad signatures, unsigned images,
downgrades and replays end FAILED and leave the running firmware alone."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulator.flash import Flash
from fotatools.provisioning import signer_der
from fotatools.release import sign_image
from tests.device.rig import firmware


def pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())


def signed_rig(rig, version="1.0.0"):
    r = rig(image=firmware(version))
    (r.fs / "certs" / "signer.der").write_bytes(signer_der(pem(KEY)))
    cfg = json.loads((r.fs / "config.json").read_text())
    cfg["signer"] = "certs/signer.der"
    (r.fs / "config.json").write_text(json.dumps(cfg))
    return r


def sig(image: bytes, key=KEY) -> str:
    return sign_image(image, pem(key))["value"]


def test_signed_newer_image_is_accepted(rig):
    r = signed_rig(rig)
    new = firmware("1.0.1")
    job = r.publish(new, bc_sig=sig(new))
    result = r.run()
    assert "signature ok" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


OTHER_IMAGE = firmware("1.0.1", payload={"x.py": "x = 1\n"})

CASES = [
    ("unsigned", firmware("1.0.1"), None, "check", "unsigned image refused: this device requires bc_sig"),
    ("other key", firmware("1.0.1"), lambda im: sig(im, OTHER), "verify", "signature does not verify"),
    ("signature of another image", firmware("1.0.1"), lambda im: sig(OTHER_IMAGE), "verify",
     "signature does not verify"),
    ("not a signature", firmware("1.0.1"), lambda im: "AAAA", "verify", "malformed signature"),
    ("downgrade", firmware("0.9.0"), sig, "verify", "version 0.9.0 is not newer than the running 1.0.0"),
    ("replay of the running version", firmware("1.0.0"), sig, "verify",
     "version 1.0.0 is not newer than the running 1.0.0"),
    ("unordered version", firmware("1.0.1-beta"), sig, "verify", "cannot be ordered"),
]


@pytest.mark.parametrize("name,image,signature,step,reason", CASES, ids=[c[0] for c in CASES])
def test_refused(rig, name, image, signature, step, reason):
    r = signed_rig(rig)
    before = r.running_slot_bytes()
    extra = {"bc_sig": signature(image)} if signature else {}
    job = r.publish(image, **extra)
    result = r.run(max_boots=2)
    assert result.boot_count == 1, result.console
    ex = r.execution(job)
    assert ex.status == "FAILED", result.console
    assert ex.status_details["step"] == step
    assert reason in ex.status_details["reason"], ex.status_details
    assert Flash(r.flash).boot_slot() == "ota_0" and r.running_slot_bytes() == before


def test_lower_secure_version_is_refused_even_unsigned(rig):
    from emulator.image import build_app_image

    r = rig(image=build_app_image("1.0.0", size=300_000, secure_version=2))
    job = r.publish(build_app_image("1.0.1", size=300_000, secure_version=1))
    r.run(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert ex.status_details["reason"] == "secure_version 1 is below the running 2"


def afr_ota_doc(r, image, signature):
    path = r.folder / "afr.bin"
    path.write_bytes(image)
    key = f"fw/{r.thing}-afr.bin"
    url = r.cloud.upload(path, key)
    return {"afr_ota": {"protocols": ["HTTP", "MQTT"], "streamname": "AFR_OTA-x", "files": [{
        "filepath": "/fw.bin", "filesize": len(image), "fileid": 0, "certfile": "signer.crt",
        "update_data_url": "${aws:iot:s3-presigned-url:%s}" % url, "auth_scheme": "aws.s3.presigned",
        "sig-sha256-ecdsa": signature, "fileType": 0}]}}


def publish_doc(r, doc):
    import uuid

    from fotatools.backend import Rollout

    job = f"AFR_OTA-{uuid.uuid4().hex[:8]}"
    r.cloud.create_job(job, [r.cloud.thing_arn(r.thing)], doc, Rollout())
    return job


def test_freertos_afr_ota_job_over_http(rig):
    r = signed_rig(rig)
    new = firmware("1.0.1")
    job = publish_doc(r, afr_ota_doc(r, new, sig(new)))
    result = r.run()
    assert "signature ok" in result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


def test_freertos_afr_ota_job_with_a_bad_signature(rig):
    r = signed_rig(rig)
    new = firmware("1.0.1")
    job = publish_doc(r, afr_ota_doc(r, new, sig(new, OTHER)))
    r.run(max_boots=2)
    assert r.execution(job).status_details["reason"] == "signature does not verify"


def test_freertos_afr_ota_job_needs_a_signer_key(rig):
    r = rig()  # no signer key configured
    new = firmware("1.0.1")
    job = publish_doc(r, afr_ota_doc(r, new, sig(new)))
    r.run(max_boots=2)
    ex = r.execution(job)
    assert ex.status == "FAILED"
    assert "afr_ota images are code-signed: this device has no signer key" in ex.status_details["reason"]


def test_freertos_afr_ota_job_over_an_mqtt_stream(rig):
    # The file comes over the device's MQTT connection (AWS IoT MQTT-based file delivery).
    import uuid

    r = signed_rig(rig)
    new = firmware("1.0.1", size=100_000)
    path = r.folder / "stream.bin"
    path.write_bytes(new)
    key = f"fw/{r.thing}-stream.bin"
    r.cloud.upload(path, key)
    stream = f"AFR_OTA-{uuid.uuid4().hex[:8]}"
    r.cloud.create_stream(stream, [(0, key)], "firmware 1.0.1")
    doc = {"afr_ota": {"protocols": ["MQTT"], "streamname": stream, "files": [{
        "filepath": "/fw.bin", "filesize": len(new), "fileid": 0, "certfile": "signer.crt",
        "sig-sha256-ecdsa": sig(new), "fileType": 0}]}}
    job = publish_doc(r, doc)
    result = r.run()
    assert "fota: [download] 100% 100000/100000 bytes" in result.console, result.console
    assert r.execution(job).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"


def test_fota_publish_over_mqtt_end_to_end(rig, cloud):
    # The host tool makes the stream and the afr_ota job; the device takes the file over MQTT.
    import subprocess
    import sys
    from pathlib import Path

    _, home = cloud
    r = signed_rig(rig)
    key = r.folder / "signer.pem"
    key.write_bytes(pem(KEY))
    image = r.folder / "micropython-1.0.1.bin"
    image.write_bytes(firmware("1.0.1"))
    fota = [str(Path(sys.executable).parent / "fota"), "--home", str(home)]
    subprocess.run(fota + ["build", str(image), "--sign", str(key), "--out", str(r.folder / "rel")],
                   check=True, capture_output=True)
    manifest = next((r.folder / "rel").glob("*.json"))
    out = subprocess.run(fota + ["publish", str(manifest), "--thing", r.thing, "--protocol", "mqtt",
                                 "--json"], check=True, capture_output=True, text=True).stdout
    published = json.loads(out)
    assert published["document"]["afr_ota"]["streamname"] == published["job_id"]
    result = r.run()
    assert "fota: [download] over MQTT, stream %s file 0" % published["job_id"] in result.console
    assert r.execution(published["job_id"]).status == "SUCCEEDED", result.console
    assert r.version() == "1.0.1"
