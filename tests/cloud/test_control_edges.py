"""The stand-in's control operations (tools/fotatools/cloud/control.py), in process: the
bounds of their parameters on both sides."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError

from tests.cloud.engines import control_api


@pytest.fixture()
def api(tmp_path):
    for a in control_api(tmp_path, ()):
        a.store.put("bucket", "f.bin", b"data")
        yield a


def test_presigned_urls_live_one_second_to_a_week(api):
    for expires in (1, 3600, 604800):
        url = api.presign({"bucket": "bucket", "key": "f.bin", "expiresInSec": expires})["url"]
        assert url.startswith("https://") and "f.bin" in url
    assert "f.bin" in api.presign({"bucket": "bucket", "key": "f.bin"})["url"]  # an hour by default
    for expires in (0, 604801, -1, True, "60", 60.0):
        with pytest.raises(ControlError, match=r"expiresInSec must be an integer 1\.\.604800"):
            api.presign({"bucket": "bucket", "key": "f.bin", "expiresInSec": expires})
    for params in ({"key": "f.bin"}, {"bucket": "bucket"}, {"bucket": "", "key": "f.bin"}):
        with pytest.raises(ControlError):
            api.presign(params)


def test_an_upload_body_is_read_to_its_length_and_no_further():
    import io

    from fotatools.cloud.control import _Limited

    f = io.BytesIO(b"0123456789next request")
    body = _Limited(f, 10)
    assert body.read(4) == b"0123" and body.read() == b"456789" and body.read() == b"" and body.read(3) == b""
    assert f.read() == b"next request"  # the rest of the connection is not touched
    body = _Limited(io.BytesIO(b"abc"), 10)  # the peer sends less than it said
    assert body.read(-1) == b"abc" and body.read(5) == b"" and body.left == 0
    assert _Limited(io.BytesIO(b"abc"), 0).read() == b""
    assert _Limited(io.BytesIO(b"abc"), 1).read(0) == b"" and _Limited(io.BytesIO(b"abc"), 1).read(5) == b"a"


def test_a_presign_for_a_bad_key_names_the_reason(api):
    with pytest.raises(ControlError) as e:
        api.presign({"bucket": "Bad_Bucket", "key": "f.bin"})
    assert e.value.kind == "InvalidRequestException" and "bucket" in e.value.message.lower()


def test_the_http_api_answers_200_on_success_and_aws_codes_on_failure(api):
    """The raw HTTP status, as AWS's APIs answer: 200 for a call that worked (not any 2xx),
    404 for an unknown operation, 400 for a body that is not a JSON object, 401 without the
    token."""
    import http.client
    import json

    from fotatools.cloud.control import ControlServer

    server = ControlServer(api, "tok").start()
    try:
        def post(op: str, body: bytes, token: str = "tok") -> tuple[int, dict]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            try:
                conn.request("POST", f"/{op}", body=body, headers={"Authorization": f"Bearer {token}"})
                r = conn.getresponse()
                return r.status, json.loads(r.read())
            finally:
                conn.close()

        status, body = post("Presign", b'{"bucket": "bucket", "key": "f.bin"}')
        assert status == 200 and "f.bin" in body["url"]
        assert post("ListThings", b"")[0] == 200
        assert post("NoSuchOperation", b"{}")[0] == 404
        assert post("ListThings", b"[]")[0] == 400
        assert post("ListThings", b"{}", token="wrong")[0] == 401
    finally:
        server.stop()
