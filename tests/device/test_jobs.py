"""lib/jobs.py and lib/awsiot.py in MicroPython against the local stand-in's jobs service."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from fotatools.backend import Rollout
from tests.device.mpy import run_json

PRELUDE = """
import json
from fota.awsiot import Connection, load_config
from fota.jobs import Jobs, JobsError
conn = Connection(load_config())
conn.connect()
jobs = Jobs(conn, timeout_ms=5000)
def err(f):
    try:
        f()
        return None
    except JobsError as e:
        return e.code
"""


def device(rig, code: str, extra_path: list[Path] | None = None) -> object:
    r = rig.fs
    path = [str(p) for p in extra_path or []] + [str(r / "lib"), ".frozen"]
    return run_json(PRELUDE + code, cwd=r, env={"MICROPYPATH": os.pathsep.join(path)})


@pytest.fixture()
def thing(rig):
    return rig()


def job_for(thing, doc: dict | None = None) -> str:
    job_id = f"j-{uuid.uuid4().hex[:8]}"
    thing.cloud.create_job(job_id, [thing.cloud.thing_arn(thing.thing)], doc or {"operation": "reboot"},
                           Rollout())
    return job_id


def test_no_jobs(thing):
    assert device(thing, "ip, q = jobs.list(); print(json.dumps([len(ip), len(q), jobs.start_next()]))") \
        == [0, 0, None]


def test_describe_update_and_version_conflicts(thing):
    job = job_for(thing, {"operation": "reboot", "delay": 3})
    out = device(thing, """
ip, q = jobs.list()
j = q[0].describe()
first = [j.id, j.status, j.version, j.document]
j.update("IN_PROGRESS", {"step": "one", "n": 1})
after = [j.status, j.version, j.status_details]
stale = err(lambda: jobs.update(j.id, "IN_PROGRESS", {"step": "x"}, expected_version=1))
j.update("SUCCEEDED", {"done": "yes"})
again = err(lambda: j.update("IN_PROGRESS"))
print(json.dumps([first, after, stale, again]))
""")
    first, after, stale, again = out
    assert first == [job, "QUEUED", 1, {"operation": "reboot", "delay": 3}]
    assert after == ["IN_PROGRESS", 2, {"step": "one", "n": "1"}]
    assert stale == "VersionMismatch"
    assert again in ("TerminalStateReached", "InvalidStateTransition")
    assert thing.execution(job).status == "SUCCEEDED"
    assert thing.execution(job).status_details == {"done": "yes"}


def test_start_next_takes_the_job(thing):
    job = job_for(thing)
    out = device(thing, """
ex = jobs.start_next({"step": "begin"})
print(json.dumps([ex["jobId"], ex["status"], ex["statusDetails"], jobs.start_next()["jobId"]]))
""")
    assert out == [job, "IN_PROGRESS", {"step": "begin"}, job]  # the same one: it is in progress


def test_unknown_job_is_resource_not_found(thing):
    assert device(thing, "print(json.dumps(err(lambda: jobs.describe('no-such-job'))))") == "ResourceNotFound"


def test_status_details_are_made_valid(thing):
    job = job_for(thing)
    out = device(thing, f"""
j = jobs.job({job!r})
j.update("IN_PROGRESS", {{"reason": "line one\\nline two\\t" + "x" * 2000, "empty": ""}})
print(json.dumps(j.status_details))
""")
    assert out["reason"].startswith("line one line two ")
    assert len(out["reason"]) == 1024 and out["empty"] == "-"


def test_notification_wakes_the_loop(thing):
    # The device waits; a job created meanwhile wakes it through notify-next.
    import threading

    t = threading.Timer(1.0, lambda: job_for(thing))
    t.start()
    try:
        out = device(thing, """
import time
t0 = time.ticks_ms()
woke = jobs.wait(15000)
print(json.dumps([woke, time.ticks_diff(time.ticks_ms(), t0) < 14000, jobs.changed(), jobs.changed()]))
""")
    finally:
        t.join()
    assert out == [True, True, True, False]  # changed() reports a notification once


def test_no_answer_is_a_timeout(thing):
    # The broker drops what a thing publishes on another thing's topics: no answer comes.
    out = device(thing, """
jobs.timeout_ms = 500
jobs.prefix = "$aws/things/somebody-else/jobs/"
print(json.dumps(err(lambda: jobs.list())))
""")
    assert out == "Timeout"


def test_works_with_the_frozen_umqtt_api(thing, tmp_path):
    # ESP32 firmware freezes a newer umqtt.simple: MQTTClient(..., ssl=SSLContext) and
    # connect() calls ssl.wrap_socket(sock, server_hostname=server). Derive that variant from
    # the PyPI release and check the connection code works with it too.
    src = (thing.fs / "lib" / "umqtt" / "simple.py").read_text()
    old = "            import ussl\n            self.sock = ussl.wrap_socket(self.sock, **self.ssl_params)\n"
    assert old in src
    new = src.replace(old, "            self.sock = self.ssl.wrap_socket(self.sock, server_hostname=self.server)\n")
    new = new.replace("ssl=False, ssl_params={}", "ssl=None").replace("        self.ssl_params = ssl_params\n", "")
    (tmp_path / "umqtt").mkdir()
    (tmp_path / "umqtt" / "__init__.py").write_text("")
    (tmp_path / "umqtt" / "simple.py").write_text(new)
    out = device(thing, """
import umqtt.simple
ip, q = jobs.list()
print(json.dumps([len(q), "ssl_params" in dir(conn.client)]))
""", extra_path=[tmp_path])
    assert out == [0, False]  # the derived client is the one that connected


def test_a_quiet_session_is_kept_alive(thing):
    # keep-alive 2 s: the broker drops a client silent for 3 s unless it pings.
    out = device(thing, """
conn.close()
conn = Connection(load_config(), keepalive=2)
conn.connect()
jobs = Jobs(conn, timeout_ms=5000)
jobs.wait(6000)
ip, q = jobs.list()
print(json.dumps(len(q)))
""")
    assert out == 0


def test_status_details_of_any_length_fit_a_small_heap():
    # statusDetails values are cut to AWS's 1,024 characters before they are cleaned: a value
    # of 40,000 characters (an exception quoting a document, say) costs no more heap than one
    # of 1,024.
    out = run_json("import json\nfrom fota import jobs\n"
                   "d = jobs._details({'reason': 'x' * 40000, 'step': 'check'})\n"
                   "print(json.dumps([len(d['reason']), d['step']]))", heapsize="128k")
    assert out == [1024, "check"]
