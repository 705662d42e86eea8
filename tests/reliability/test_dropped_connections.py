"""Connections dropped during downloads, at seeded random byte offsets: each download goes on
from the last whole sector, so no more than one sector is fetched twice per drop, and the
update succeeds."""

from __future__ import annotations

import hashlib
import random

import pytest

from fotatools.backend import Rollout
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from tests.device.rig import firmware
from tests.reliability.dropserver import DropServer
from tests.reliability.plugin import full

ROW = "connections dropped during downloads"
NEW = firmware("1.0.1", size=200_000)
SECTOR = 4096
SEEDS = range(24) if full() else range(3)


@pytest.mark.row(ROW)
@pytest.mark.parametrize("seed", SEEDS)
def test_dropped_connection(rig, cloud, seed):
    rnd = random.Random(seed)
    # 1 or 2 drops: the device gives a download 3 connections in all
    drops = sorted(rnd.sample(range(1, len(NEW)), rnd.choice((1, 2))))
    _, home = cloud
    paths = Paths(home)
    srv = LocalCA(paths.ca).existing(paths.server, "server")
    r = rig()
    with DropServer(NEW, srv.cert_pem, srv.key_pem, drops) as s:
        doc = {"operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(NEW).hexdigest(),
               "bc_size": len(NEW), "bc_url": s.url}
        job = f"drop-{seed}-{rnd.getrandbits(32):08x}"
        r.cloud.create_job(job, [r.cloud.thing_arn(r.thing)], doc, Rollout())
        result = r.run()
        requests = list(s.requests)
    assert r.execution(job).status == "SUCCEEDED", (drops, requests, result.console)
    assert r.version() == "1.0.1"
    # one request per drop plus the last; each after a drop starts at the sector it broke in
    assert [start for start, _ in requests] == [0] + [d - d % SECTOR for d in drops], (drops, requests)
    fetched = sum(n for _, n in requests)
    assert fetched - len(NEW) <= SECTOR * len(drops), (drops, requests)
