"""Several files as one OTA update on AWS (CreateOTAUpdate).

moto has no OTA updates and no streams: those IoT calls go through botocore's Stubber, which
checks every request against AWS IoT's own API model (names, types, required fields, ranges)
and hands back AWS's answer. S3 (the uploads) and AWS Signer profiles are moto's, in server
mode.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote
import pytest
from botocore.stub import ANY, Stubber
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fotatools import cli
from fotatools.aws import AwsBackend
from fotatools.backend import BackendError, NotFound, Rollout
from fotatools.ota import load_files, sign_files
from tests.cli.conftest import REGION, ROLE_ARN, unique
from tests.cli.images import app_image
from tests.cli.test_ota_files import code_signing_cert, mcuboot_image, signing_key

ACCOUNT = "123456789012"


@pytest.fixture
def backend(moto, aws_env) -> AwsBackend:
    return AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN,
                      progress=False)


@pytest.fixture
def files(tmp_path, backend):
    """An app image (file 0) and an MCUboot image (file 1), signed and uploaded."""
    key, private = signing_key(tmp_path)
    app = tmp_path / "micropython.bin"
    app.write_bytes(app_image("1.3.0", size=30_000))
    sec = mcuboot_image(tmp_path, "0.9.2+7")
    fs = load_files([f"0={app}", f"1={sec}:secondary.bin"])
    sign_files(fs, key.read_bytes())
    for f in fs:
        f.key = f"firmware/{f.path.name}"
        f.url = backend.upload(f.path, f.key)
    return fs, code_signing_cert(tmp_path, private), private


def ota_info(ota_id: str, status: str, **extra) -> dict:
    return {"otaUpdateInfo": {"otaUpdateId": ota_id, "otaUpdateStatus": status, **extra}}


def test_custom_signing_over_a_stream(backend, files):
    fs, cert, private = files
    ota_id = "ota-1-3-0"
    thing = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/dev-1"
    want_files = [{
        "fileName": f.filepath, "fileType": 0, "fileVersion": f.version,
        "attributes": {"kind": f.kind, "sha256": f.manifest["sha256"]},
        "fileLocation": {"stream": {"streamId": ota_id, "fileId": f.file_id}},
        "codeSigning": {"customCodeSigning": {
            "signature": {"inlineDocument": base64.b64decode(f.signature)},
            "certificateChain": {"certificateName": "certs/signer.der",
                                 "inlineDocument": cert.read_text()},
            "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA"}},
    } for f in fs]
    sent: list[dict] = []
    backend.iot.meta.events.register("before-parameter-build.iot.CreateOTAUpdate",
                                     lambda params, **kw: sent.append(params))
    with Stubber(backend.iot) as stub:
        stub.add_response("create_stream", {"streamId": ota_id, "streamVersion": 1}, {
            "streamId": ota_id, "roleArn": ROLE_ARN, "description": f"OTA update {ota_id}",
            "files": [{"fileId": 0, "s3Location": {"bucket": backend.bucket,
                                                   "key": "firmware/micropython.bin"}},
                      {"fileId": 1, "s3Location": {"bucket": backend.bucket,
                                                   "key": "firmware/secondary.signed.bin"}}]})
        stub.add_response("create_ota_update", {
            "otaUpdateId": ota_id, "otaUpdateStatus": "CREATE_PENDING",
            "otaUpdateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:otaupdate/{ota_id}"}, {
            "otaUpdateId": ota_id, "targets": [thing], "targetSelection": "SNAPSHOT",
            "protocols": ["MQTT"], "files": want_files, "roleArn": ROLE_ARN,
            "description": ANY,
            "awsJobExecutionsRolloutConfig": {"maximumPerMinute": 10},
            "awsJobAbortConfig": {"abortCriteriaList": [{
                "failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 20.0,
                "minNumberOfExecutedThings": 3}]},
            "awsJobTimeoutConfig": {"inProgressTimeoutInMinutes": 30}})
        stub.add_response("get_ota_update", ota_info(ota_id, "CREATE_IN_PROGRESS"),
                          {"otaUpdateId": ota_id})
        stub.add_response("get_ota_update", ota_info(
            ota_id, "CREATE_COMPLETE", awsIotJobId=f"AFR_OTA-{ota_id}"), {"otaUpdateId": ota_id})
        job = backend.create_ota_update(
            ota_id, [thing], fs, "mqtt",
            Rollout(maximum_per_minute=10, abort_failure_percent=20, abort_min_executed=3,
                    step_timeout_minutes=30),
            certificate_pem=cert.read_bytes(), certfile="certs/signer.der", poll=0)
        stub.assert_no_pending_responses()
    assert job == f"AFR_OTA-{ota_id}"
    # what went to AWS verifies under the certificate's key, file by file
    for entry, f in zip(sent[0]["files"], fs):
        sig = entry["codeSigning"]["customCodeSigning"]["signature"]["inlineDocument"]
        private.public_key().verify(sig, f.path.read_bytes(), ec.ECDSA(hashes.SHA256()))


def test_aws_signer_profile_signs_from_s3(backend, files, moto):
    fs, _, _ = files
    signer = backend._session.client("signer", endpoint_url=moto.url)
    profile = unique("fota").replace("-", "_")
    signer.put_signing_profile(
        profileName=profile, platformId="AmazonFreeRTOS-Default",
        signingMaterial={"certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/x"})
    assert backend.check_signing_profile(profile)["platformId"] == "AmazonFreeRTOS-Default"
    # moto answers a missing profile with a server error: AWS's answer, from its model
    with Stubber(backend._signer) as stub:
        stub.add_client_error("get_signing_profile", "ResourceNotFoundException",
                              "profile not found", 404, expected_params={"profileName": "nope"})
        with pytest.raises(BackendError, match="no AWS Signer profile nope"):
            backend.check_signing_profile("nope")
    signer.cancel_signing_profile(profileName=profile)
    with pytest.raises(BackendError, match="is Canceled, not Active"):
        backend.check_signing_profile(profile)

    ota_id = "ota-signer"
    with Stubber(backend.iot) as stub:  # no stream: the OTA Update Manager makes it
        stub.add_response("create_ota_update", {"otaUpdateId": ota_id,
                                                "otaUpdateStatus": "CREATE_PENDING"}, {
            "otaUpdateId": ota_id, "targets": ["arn:t"], "targetSelection": "SNAPSHOT",
            "protocols": ["MQTT"], "roleArn": ROLE_ARN, "description": ANY,
            "files": [{
                "fileName": f.filepath, "fileType": 0, "fileVersion": f.version,
                "attributes": ANY,
                "fileLocation": {"s3Location": {"bucket": backend.bucket, "key": f.key}},
                "codeSigning": {"startSigningJobParameter": {
                    "signingProfileName": profile,
                    "destination": {"s3Destination": {"bucket": backend.bucket,
                                                      "prefix": f"signed/{ota_id}/"}}}},
            } for f in fs]})
        stub.add_response("get_ota_update", ota_info(ota_id, "CREATE_COMPLETE",
                                                     awsIotJobId=f"AFR_OTA-{ota_id}"),
                          {"otaUpdateId": ota_id})
        assert backend.create_ota_update(ota_id, ["arn:t"], fs, "mqtt", Rollout(),
                                         signing_profile=profile, poll=0) == f"AFR_OTA-{ota_id}"


def test_http_files_come_from_s3_with_presigned_urls(backend, files):
    fs, cert, _ = files
    with Stubber(backend.iot) as stub:
        stub.add_response("create_ota_update", {"otaUpdateId": "o"}, {
            "otaUpdateId": "o", "targets": ["arn:t"], "targetSelection": "SNAPSHOT",
            "protocols": ["HTTP"], "roleArn": ROLE_ARN, "description": ANY, "files": ANY,
            "awsJobPresignedUrlConfig": {"expiresInSec": 600}})
        stub.add_response("get_ota_update", ota_info("o", "CREATE_COMPLETE",
                                                     awsIotJobId="AFR_OTA-o"),
                          {"otaUpdateId": "o"})
        sent: list[dict] = []
        backend.iot.meta.events.register("before-parameter-build.iot.CreateOTAUpdate",
                                         lambda params, **kw: sent.append(params))
        backend.create_ota_update("o", ["arn:t"], fs, "http", Rollout(presigned_expires_sec=600),
                                  certificate_pem=cert.read_bytes(), certfile="c", poll=0)
    assert [e["fileLocation"] for e in sent[0]["files"]] == [
        {"s3Location": {"bucket": backend.bucket, "key": f.key}} for f in fs]


def test_create_failed_gives_aws_reason(backend, files):
    fs, cert, _ = files
    with Stubber(backend.iot) as stub:
        stub.add_response("create_stream", {"streamId": "o", "streamVersion": 1}, None)
        stub.add_response("create_ota_update", {"otaUpdateId": "o"}, None)
        stub.add_response("get_ota_update", ota_info("o", "CREATE_FAILED", errorInfo={
            "code": "AccessDeniedException", "message": "role cannot read the bucket"}),
            {"otaUpdateId": "o"})
        with pytest.raises(BackendError, match="OTA update o: CREATE_FAILED: "
                                               "AccessDeniedException: role cannot read"):
            backend.create_ota_update("o", ["arn:t"], fs, "mqtt", Rollout(),
                                      certificate_pem=cert.read_bytes(), certfile="c", poll=0)
        stub.add_client_error("create_stream", "ResourceAlreadyExistsException", "exists")
        with pytest.raises(BackendError, match="create stream o: ResourceAlreadyExists"):
            backend.create_ota_update("o", ["arn:t"], fs, "mqtt", Rollout(),
                                      certificate_pem=cert.read_bytes(), certfile="c", poll=0)
    with pytest.raises(BackendError, match="--signing-cert"):
        backend.create_ota_update("o2", ["arn:t"], fs, "http", Rollout(), poll=0)


def test_still_pending_is_reported(backend):
    with Stubber(backend.iot) as stub:
        for _ in range(3):
            stub.add_response("get_ota_update", ota_info("o", "CREATE_IN_PROGRESS"),
                              {"otaUpdateId": "o"})
        with pytest.raises(BackendError, match="still CREATE_IN_PROGRESS after 0 s"):
            backend.wait_ota_update("o", poll=0, wait=0)


def test_cli_publish_files_on_aws(moto, aws_env, tmp_path, monkeypatch, capsys):
    """`fota publish --file ...` on the AWS backend, in process: S3 is moto's, the IoT calls are
    checked by the Stubber."""
    key, private = signing_key(tmp_path)
    cert = code_signing_cert(tmp_path, private)
    app = tmp_path / "fw.bin"
    app.write_bytes(app_image("2.0.0", size=20_000))
    sec = mcuboot_image(tmp_path, "1.1.0")
    b = AwsBackend(endpoint_url=moto.url, bucket=unique("fota-fw"), role_arn=ROLE_ARN,
                   progress=False)
    monkeypatch.setattr("fotatools.aws.from_env", lambda **kw: b)
    base = ["--backend", "aws", "publish", "--file", f"0={app}", "--file", f"1={sec}",
            "--thing", "dev-1", "--job-id", "rel-2", "--json"]
    # on AWS, locally signed files need their certificate; a certificate of another key is refused
    assert cli.main(base + ["--sign", str(key)]) == 2
    assert "--signing-cert" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    other_cert = code_signing_cert(tmp_path / "other", ec.generate_private_key(ec.SECP256R1()))
    assert cli.main(base + ["--sign", str(key), "--signing-cert", str(other_cert)]) == 2
    assert "does not hold the public key" in capsys.readouterr().err
    with Stubber(b.iot) as stub:
        stub.add_response("describe_thing", {"thingName": "dev-1",
                                             "thingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/dev-1"},
                          {"thingName": "dev-1"})
        stub.add_response("create_stream", {"streamId": "rel-2", "streamVersion": 1}, None)
        stub.add_response("create_ota_update", {"otaUpdateId": "rel-2"}, None)
        stub.add_response("get_ota_update", ota_info("rel-2", "CREATE_COMPLETE",
                                                     awsIotJobId="AFR_OTA-rel-2"),
                          {"otaUpdateId": "rel-2"})
        assert cli.main(base + ["--sign", str(key), "--signing-cert", str(cert)]) == 0, \
            capsys.readouterr().err
        stub.assert_no_pending_responses()
    out = json.loads(capsys.readouterr().out)
    assert out["job_id"] == "AFR_OTA-rel-2" and out["ota_update_id"] == "rel-2"
    assert [(f["fileid"], f["kind"], f["version"]) for f in out["files"]] == [
        (0, "esp32-app", "2.0.0"), (1, "mcuboot", "1.1.0+0")]
    for f in out["files"]:
        key_name = unquote(f["url"].split(f"/{b.bucket}/", 1)[1])
        body = b.s3.get_object(Bucket=b.bucket, Key=key_name)["Body"].read()
        assert len(body) == f["size"]
    # AWS Signer instead: --sign is left out, the profile must be there (moto's) and Active
    assert cli.main(base + ["--signing-profile", "p", "--sign", str(key)]) == 2
    assert "leave out --sign" in capsys.readouterr().err
    assert cli.main(base + ["--signing-profile", "p", "--signing-cert", str(cert)]) == 2
    assert "leave out --sign and --signing-cert" in capsys.readouterr().err
    profile = unique("fota").replace("-", "_")
    b._session.client("signer", endpoint_url=moto.url).put_signing_profile(
        profileName=profile, platformId="AmazonFreeRTOS-Default",
        signingMaterial={"certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/x"})
    with Stubber(b.iot) as stub:
        stub.add_response("describe_thing", {"thingName": "dev-1", "thingArn": "arn:t"},
                          {"thingName": "dev-1"})
        stub.add_response("create_ota_update", {"otaUpdateId": "rel-2"}, None)
        stub.add_response("get_ota_update", ota_info("rel-2", "CREATE_COMPLETE",
                                                     awsIotJobId="AFR_OTA-rel-2"),
                          {"otaUpdateId": "rel-2"})
        assert cli.main(base + ["--signing-profile", profile]) == 0, capsys.readouterr().err
        stub.assert_no_pending_responses()
    assert json.loads(capsys.readouterr().out)["job_id"] == "AFR_OTA-rel-2"


def test_signing_profile_needs_aws(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FOTA_BACKEND", raising=False)
    app = tmp_path / "fw.bin"
    app.write_bytes(app_image("2.0.0"))
    monkeypatch.setenv("FOTA_HOME", str(tmp_path / "home"))
    assert cli.main(["publish", "--file", f"0={app}", "--thing", "t",
                     "--signing-profile", "p"]) == 2
    assert "needs --backend aws" in capsys.readouterr().err


def test_model_refuses_what_aws_would(backend, files):
    """The Stubber is no rubber stamp: botocore checks the request against the model first (a
    role ARN under its 20-character minimum, a missing otaUpdateId)."""
    fs, cert, _ = files
    backend.role_arn = "arn:aws:iam::1:r/x"
    with Stubber(backend.iot) as stub:
        stub.add_response("create_ota_update", {"otaUpdateId": "o"}, None)
        with pytest.raises(BackendError, match="Invalid length for parameter roleArn"):
            backend.create_ota_update("o", ["arn:t"], fs, "http", Rollout(),
                                      certificate_pem=cert.read_bytes(), certfile="c", poll=0)
        with pytest.raises(Exception, match="otaUpdateId"):
            backend.iot.create_ota_update(targets=["arn:t"], files=[], roleArn=ROLE_ARN)


def test_status_takes_an_ota_update_id(backend):
    """`fota status ID` on AWS: a job of that id (moto's), else the job of the OTA update of that
    id (GetOTAUpdate, which moto lacks: the Stubber)."""
    thing = unique("dev")
    backend.iot.create_thing(thingName=thing)
    job_id = unique("job")
    backend.create_job(job_id, [backend.thing_arn(thing)], {"afr_ota": {}}, Rollout())
    assert backend.resolve_job(job_id) == job_id
    not_found = ("describe_job", "ResourceNotFoundException", "no job")
    with Stubber(backend.iot) as stub:
        stub.add_client_error(*not_found, 404, expected_params={"jobId": "rel-3"})
        stub.add_response("get_ota_update", ota_info("rel-3", "CREATE_COMPLETE",
                                                     awsIotJobId="AFR_OTA-rel-3"),
                          {"otaUpdateId": "rel-3"})
        assert backend.resolve_job("rel-3") == "AFR_OTA-rel-3"
        stub.add_client_error(*not_found, 404)
        stub.add_response("get_ota_update", ota_info("rel-4", "CREATE_IN_PROGRESS"),
                          {"otaUpdateId": "rel-4"})
        with pytest.raises(BackendError, match="CREATE_IN_PROGRESS: AWS has not made its job"):
            backend.resolve_job("rel-4")
        stub.add_client_error(*not_found, 404)
        stub.add_response("get_ota_update", ota_info("rel-5", "CREATE_FAILED", errorInfo={
            "code": "InvalidRequest", "message": "signature does not verify"}),
            {"otaUpdateId": "rel-5"})
        with pytest.raises(BackendError, match="CREATE_FAILED: InvalidRequest: signature"):
            backend.resolve_job("rel-5")
        stub.add_client_error(*not_found, 404)
        stub.add_client_error("get_ota_update", "ResourceNotFoundException", "none", 404)
        with pytest.raises(NotFound, match=r"no job 'rel-6' \(nor an OTA update of that id\)"):
            backend.resolve_job("rel-6")
