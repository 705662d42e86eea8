"""`fota publish --file ...` end to end against the local AWS IoT stand-in: a device (paho, with
the certificate `fota provision --signer CERT.pem` made) takes the afr_ota job, fetches every
file over the MQTT stream by its file id, checks each signature with the key from its device
folder, and reports."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.cli.conftest import unique
from tests.cli.images import app_image
from tests.cli.test_cli_local import Device, local  # noqa: F401  (the fixture)
from tests.cli.test_ota_files import code_signing_cert, mcuboot_image, signing_key

BLOCK = 4096


class StreamDevice(Device):
    """A Device that also fetches files over AWS IoT MQTT-based file delivery (JSON)."""

    def __init__(self, home: Path, thing: str):
        super().__init__(home, thing)
        r, _ = self.client.subscribe([(f"$aws/things/{thing}/streams/+/data/json", 1),
                                      (f"$aws/things/{thing}/streams/+/description/json", 1),
                                      (f"$aws/things/{thing}/streams/+/rejected/json", 1)])
        assert r == 0

    def stream_request(self, stream: str, op: str, payload: dict, answer: str) -> list[dict]:
        self.client.publish(f"$aws/things/{self.thing}/streams/{stream}/{op}/json",
                            json.dumps(payload), qos=1)
        out = []
        while True:
            topic, msg = self.inbox.get(timeout=15)
            assert not topic.endswith("/rejected/json"), msg
            if topic.endswith(f"/{answer}/json"):
                out.append(msg)
                if answer == "description" or len(out) == payload.get("n", 1):
                    return out

    def fetch(self, stream: str, file_id: int, size: int) -> bytes:
        blocks = math.ceil(size / BLOCK)
        got = self.stream_request(stream, "get", {"c": "t", "f": file_id, "l": BLOCK, "o": 0,
                                                  "n": blocks}, "data")
        assert all(m["f"] == file_id for m in got)
        return b"".join(base64.b64decode(m["p"]) for m in sorted(got, key=lambda m: m["i"]))


def test_publish_several_files_over_one_stream(local, tmp_path):  # noqa: F811
    fota, _ = local
    home = Path(fota.env["FOTA_HOME"])
    key, private = signing_key(tmp_path)
    cert = code_signing_cert(tmp_path, private)
    thing = unique("dev")
    r = fota("provision", thing, "--signer", cert)
    assert r.code == 0, r.err
    signer_der = (home / "things" / thing / "device" / "certs" / "signer.der").read_bytes()
    signer = serialization.load_der_public_key(signer_der)
    assert signer.public_numbers() == private.public_key().public_numbers()

    app = tmp_path / "fw.bin"
    app.write_bytes(app_image("3.0.0", size=40_000))
    sec = mcuboot_image(tmp_path, "0.9.2+1", size=9000)
    r = fota("build", sec, "--out", tmp_path / "rel", "--json")
    assert r.code == 0, r.err
    sec_manifest = json.loads(r.out)["manifest"]
    cfg = tmp_path / "config.bin"
    cfg.write_bytes(b"interval=30\n" * 100)
    job_id = unique("ota")
    r = fota("publish", "--file", f"0={app}", "--file", f"1={sec_manifest}",
             "--file", f"2={cfg}:/sd/config.bin", "--sign", key, "--thing", thing,
             "--job-id", job_id, "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["job_id"] == job_id and out["stream_id"] == job_id
    assert [(f["fileid"], f["kind"], f["version"]) for f in out["files"]] == [
        (0, "esp32-app", "3.0.0"), (1, "mcuboot", "0.9.2+1"),
        (2, "file", hashlib.sha256(cfg.read_bytes()).hexdigest()[:12])]

    dev = StreamDevice(home, thing)
    try:
        ex = dev.take_job()
        doc = ex["jobDocument"]
        assert doc == out["document"]
        ota = doc["afr_ota"]
        assert ota["protocols"] == ["MQTT"] and ota["streamname"] == job_id
        desc = dev.stream_request(job_id, "describe", {"c": "d"}, "description")[0]
        assert [(f["f"], f["z"]) for f in desc["r"]] == [(e["fileid"], e["filesize"])
                                                         for e in ota["files"]]
        local_files = {0: app, 1: sec, 2: cfg}
        for e in ota["files"]:
            data = dev.fetch(job_id, e["fileid"], e["filesize"])
            assert data == local_files[e["fileid"]].read_bytes()
            signer.verify(base64.b64decode(e["sig-sha256-ecdsa"]), data,
                          ec.ECDSA(hashes.SHA256()))
        assert [e["filepath"] for e in ota["files"]] == ["fw.bin", "secondary-0.9.2+1.bin",
                                                         "/sd/config.bin"]
        dev.update(ex["jobId"], "SUCCEEDED", {"reason": "accepted 3.0.0, secondary 0.9.2+1"})
    finally:
        dev.close()
    r = fota("status", job_id, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["counts"] == {"SUCCEEDED": 1}


def test_publish_files_refusals_on_the_stand_in(local, tmp_path):  # noqa: F811
    fota, _ = local
    app = tmp_path / "fw.bin"
    app.write_bytes(app_image("3.1.0"))
    cfg = tmp_path / "c.bin"
    cfg.write_bytes(b"x")
    thing = unique("dev")
    assert fota("provision", thing).code == 0
    r = fota("publish", "--file", f"0={app}", "--file", f"1={cfg}", "--thing", thing)
    assert r.code == 2 and "is not signed: give --sign" in r.err, r.err
    r = fota("publish", "--file", f"0={app}", "--thing", thing, "--sign", tmp_path / "nokey.pem")
    assert r.code == 2 and "signing key not found" in r.err, r.err
    r = fota("publish", "--file", f"0={cfg}", "--thing", thing, "--sign", tmp_path / "k.pem")
    assert r.code == 2 and "file id 0 is the ESP32's own app image" in r.err, r.err


def test_publish_files_over_https(local, tmp_path):  # noqa: F811
    """--protocol https: no stream; each file's pre-signed URL placeholder is replaced by the
    service with a URL the device downloads the file from."""
    fota, _ = local
    home = Path(fota.env["FOTA_HOME"])
    key, private = signing_key(tmp_path)
    thing = unique("dev")
    assert fota("provision", thing, "--signer", key).code == 0
    sec = mcuboot_image(tmp_path, "2.0.1")
    cfg = tmp_path / "fpga.bit"
    cfg.write_bytes(bytes(range(256)) * 40)
    job_id = unique("ota")
    r = fota("publish", "--file", f"1={sec}", "--file", f"3={cfg}:/sd/fpga.bit", "--sign", key,
             "--protocol", "https", "--thing", thing, "--job-id", job_id, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["stream_id"] is None
    dev = StreamDevice(home, thing)
    try:
        ota = dev.take_job()["jobDocument"]["afr_ota"]
        assert ota["protocols"] == ["HTTP"] and "streamname" not in ota
        for e, path in zip(ota["files"], (sec, cfg)):
            assert e["update_data_url"].startswith("https://") and "${" not in e["update_data_url"]
            assert e["auth_scheme"] == "aws.s3.presigned"
            data = dev.download(e["update_data_url"])
            assert data == path.read_bytes()
            private.public_key().verify(base64.b64decode(e["sig-sha256-ecdsa"]), data,
                                        ec.ECDSA(hashes.SHA256()))
    finally:
        dev.close()
