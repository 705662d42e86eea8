"""tools/fotatools/cloud/jobs.py: a Jobs MQTT request's clientToken is "an arbitrary value ...
reflected in the response" (AWS IoT Jobs device MQTT API); the stand-in takes a string of 1 to 64
characters, both ends included, and refuses an empty one or one of 65 as an InvalidRequest."""

from __future__ import annotations

import pytest

from tests.cloud.engines import Clock, jobs_engine
from tests.cloud.test_jobs_mutants14 import ask


@pytest.fixture
def engine(tmp_path):
    yield from jobs_engine(tmp_path, things=("a",), clock=Clock())


@pytest.mark.parametrize("token", ["t", "x" * 64])
def test_a_client_token_of_one_to_64_characters_is_taken_and_echoed(engine, token):
    kind, body = ask(engine, "get", {"clientToken": token})
    assert (kind, body["clientToken"]) == ("accepted", token)


@pytest.mark.parametrize("token", ["", "x" * 65])
def test_an_empty_client_token_or_one_of_65_characters_is_refused(engine, token):
    kind, body = ask(engine, "get", {"clientToken": token})
    assert (kind, body["code"]) == ("rejected", "InvalidRequest")
    assert body["message"] == "clientToken must be a string of 1-64 characters"
