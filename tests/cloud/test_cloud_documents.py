"""Job documents are JSON text of at most 32 KB, as AWS IoT documents them: any JSON value,
objects or not, reaches the device as it was given; what is not JSON, or too long, is refused."""

from __future__ import annotations

import json

import pytest

from tests.cloud.conftest import unique


@pytest.mark.parametrize("document", [[1, 2], "fota", 0, None, {"operation": "x"}],
                         ids=["list", "string", "number", "null", "object"])
def test_any_json_value_reaches_the_device(backend, make_device, document):
    d = make_device()
    job = unique("job")
    backend.call("CreateJob", {"jobId": job, "targets": [backend.thing_arn(d.name)],
                               "document": json.dumps(document)})
    kind, body = d.request(f"{job}/get")
    assert kind == "accepted"
    assert body["execution"]["jobDocument"] == document


@pytest.mark.parametrize("text,why", [("{not json", "not valid JSON"),
                                      (json.dumps({"p": "x" * 32768}), "larger than 32768")])
def test_what_is_not_json_or_too_long_is_refused(backend, make_device, text, why):
    d = make_device()
    with pytest.raises(Exception, match=why):
        backend.call("CreateJob", {"jobId": unique("job"), "targets": [backend.thing_arn(d.name)],
                                   "document": text})
