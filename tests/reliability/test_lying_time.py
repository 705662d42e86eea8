"""Lying time servers: each kind of liar (years ahead, hours behind, malformed, kiss-of-death,
an answer to another request) in each place of the board's list of time sources, next to
honest ones. The stand-in's server certificate lives 47 days, as publicly trusted ones soon
will, and the firmware was built two days before it: the board gets through TLS only on an
honest time. Each try: the board runs main.py, connects, its update job SUCCEEDED, and its
clock ends within seconds of the truth."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from emulator.image import build_app_image
from fotatools.cloud import daemon
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.client import LocalBackend
from tests.device.ntp import LIARS, StubNtp
from tests.device.rig import Rig
from tests.reliability.board import MAIN, Running
from tests.reliability.plugin import full

ROW = "lying time servers"
CERT_DAYS = 47
# where the liar stands: honest ones are the stand-in's own server and a second honest one
PLACES = {
    "first of two": lambda liar, honest, own: [liar, own],
    "last of two": lambda liar, honest, own: [own, liar],
    "between two honest": lambda liar, honest, own: [honest, liar, own],
    "alone, then an honest one": lambda liar, honest, own: [liar, honest],  # honest silent at first
}
LATE = "alone, then an honest one"
# the late honest server costs a minute of back-off: one liar of each way through the clock
LATE_KINDS = ("1 year ahead", "11 years ahead", "3 hours behind", "short packet", "other request",
              "kiss-of-death DENY")
CASES = [(k, p) for k in LIARS for p in PLACES if p != LATE or k in LATE_KINDS]
SAMPLE = [("11 years ahead", "first of two"), ("23 hours behind", "first of two"),
          ("kiss-of-death DENY", "between two honest"), ("1 year ahead", LATE)]


@pytest.fixture(scope="module")
def cloud47(tmp_path_factory):
    """A stand-in whose server certificate is valid from an hour ago for 47 days."""
    home = tmp_path_factory.mktemp("home47")
    paths = daemon.Paths(home)
    now = dt.datetime.now(dt.timezone.utc)
    LocalCA(paths.ca).ensure().issue_server(
        paths.server, valid=(now - dt.timedelta(hours=1), now + dt.timedelta(days=CERT_DAYS)))
    daemon.start(home, owned=True)
    try:
        yield LocalBackend(home), home
    finally:
        daemon.stop(home)


@pytest.mark.row(ROW)
@pytest.mark.parametrize("kind,place", CASES if full() else SAMPLE)
def test_a_lying_time_server(cloud47, tmp_path, kind, place):
    backend, home = cloud47
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    liar, honest = StubNtp(LIARS[kind]), StubNtp(on=place != LATE)
    try:
        r = Rig(backend, home, tmp_path, app=MAIN, image=build_app_image("1.0.0", size=200_000, built=old))
        cfg = json.loads((r.fs / "config.json").read_text())
        cfg.update(telemetry_s=1, ntp=PLACES[place](liar.address, honest.address, cfg["ntp"]))
        (r.fs / "config.json").write_text(json.dumps(cfg))
        job = r.publish(build_app_image("1.0.1", size=200_000, built=old))
        with Running(r, tmp_path / "ops.log") as board:
            if place == LATE:  # offline on the liar alone, but asking again
                assert board.until(lambda: honest.requests >= 2, 120), board.dev.console[-4000:]
                assert r.execution(job).status == "QUEUED", board.dev.console[-4000:]
                honest.on = True
                assert board.until(lambda: r.execution(job).status != "QUEUED", 180), board.dev.console[-4000:]
                late = time.time() - honest.answered[0]
                assert late < 60, (late, board.dev.console[-4000:])
            done = board.until(lambda: r.execution(job).status == "SUCCEEDED", 300)
            off = board.dev.board_time() - time.time()
            console = board.dev.console
        assert done, (r.execution(job), console[-4000:])
        assert r.version() == "1.0.1"
        assert abs(off) < 5, (off, console[-4000:])
        assert liar.requests >= 1, console[-4000:]  # the liar was heard
        assert "Traceback" not in console, console[-4000:]
    finally:
        liar.close()
        honest.close()
