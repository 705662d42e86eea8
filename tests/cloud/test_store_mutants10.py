"""tools/fotatools/cloud/store.py, parse_s3_url: only an https (or http) URL with a host names an
S3 object; a URL of another scheme is refused for its scheme even when its host and path would
name a bucket and key, an https URL without a host is refused as clearly (a StoreError, never
another exception), and a job whose presigned-URL placeholder holds either is refused at
CreateJob."""

from __future__ import annotations

import pytest

from fotatools.cloud.jobs import ControlError, thing_arn
from fotatools.cloud.store import StoreError, parse_s3_url

from tests.cloud.engines import jobs_engine

PATH = "s3.amazonaws.com/my-bucket/fw/a.bin"


@pytest.mark.parametrize("scheme", ["ftp", "file", "s3"])
def test_a_url_of_another_scheme_is_refused(scheme):
    with pytest.raises(StoreError, match="not an https URL"):
        parse_s3_url(f"{scheme}://{PATH}")


@pytest.mark.parametrize("url", ["https:///my-bucket/fw/a.bin", "https://:443/my-bucket/fw/a.bin"])
def test_an_https_url_without_a_host_is_refused(url):
    with pytest.raises(StoreError, match="not an https URL"):
        parse_s3_url(url)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_an_http_or_https_url_is_taken(scheme):
    assert parse_s3_url(f"{scheme}://{PATH}") == ("my-bucket", "fw/a.bin")


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path)


@pytest.mark.parametrize("url", ["ftp://" + PATH, "https:///my-bucket/fw/a.bin"])
def test_a_job_whose_placeholder_is_not_an_https_url_is_refused(engine, url):
    doc = {"url": "${aws:iot:s3-presigned-url:" + url + "}"}
    with pytest.raises(ControlError, match="not an https URL") as e:
        engine.create_job({"jobId": "j", "targets": [thing_arn("a")], "document": doc})
    assert e.value.kind == "InvalidRequestException"
    assert engine.list_jobs()["jobs"] == []
