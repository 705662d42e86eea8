"""tools/fotatools/cloud/streams.py, in process: a message on $aws/things/<thing>/streams
itself (no stream id: the topic the service's filter $aws/things/+/streams/# also matches) is no
request and gets no answer, and handling it raises nothing; one level more (an empty stream id)
is a request on a bad topic and is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


from tests.cloud.engines import streams_engine


@pytest.fixture()
def engine(tmp_path: Path):
    yield from streams_engine(tmp_path, record=True)


def test_the_streams_level_itself_is_no_request_and_gets_no_answer(engine):
    engine.handle("$aws/things/dev/streams", json.dumps({"c": "t"}).encode())
    assert engine.sent == []


def test_an_empty_stream_id_is_a_bad_topic(engine):
    engine.handle("$aws/things/dev/streams/", json.dumps({"c": "t"}).encode())
    (topic, body), = engine.sent
    assert topic == "$aws/things/dev/streams//rejected/json"
    assert body["o"] == "InvalidTopic" and body["c"] == "t"
