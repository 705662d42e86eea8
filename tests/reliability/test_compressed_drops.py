"""Connections dropped during compressed downloads ("bc_enc": "deflate"), at seeded random
byte offsets of the compressed file: each download goes on from the start of the piece it
broke in (the inflater cannot start mid-piece), so a drop costs the part of its piece already
fetched and nothing more, and the update succeeds."""

from __future__ import annotations

import hashlib
import random

import pytest

from fotatools.backend import Rollout
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.daemon import Paths
from tests.device.test_compressed import NEW, OFFSETS, PACKED
from tests.reliability.dropserver import DropServer
from tests.reliability.plugin import full

ROW = "connections dropped during compressed downloads"
SEEDS = range(16) if full() else range(2)


def piece_start(offset: int) -> int:
    return max(o for o in OFFSETS if o <= offset)


@pytest.mark.row(ROW)
@pytest.mark.parametrize("seed", SEEDS)
def test_dropped_connection_in_a_compressed_download(rig, cloud, seed):
    rnd = random.Random(seed)
    drops = sorted(rnd.sample(range(1, len(PACKED)), rnd.choice((1, 2))))
    _, home = cloud
    paths = Paths(home)
    srv = LocalCA(paths.ca).existing(paths.server, "server")
    r = rig()
    with DropServer(PACKED, srv.cert_pem, srv.key_pem, drops) as s:
        doc = {"operation": "fota", "bc_idx": -1, "bc_crc": hashlib.md5(NEW).hexdigest(),
               "bc_size": len(NEW), "bc_url": s.url, "bc_enc": "deflate", "bc_wbits": 12,
               "bc_zsize": len(PACKED)}
        job = f"zdrop-{seed}-{rnd.getrandbits(32):08x}"
        r.cloud.create_job(job, [r.cloud.thing_arn(r.thing)], doc, Rollout())
        result = r.run()
        requests = list(s.requests)
    assert r.execution(job).status == "SUCCEEDED", (drops, requests, result.console)
    assert r.running_slot_bytes()[:len(NEW)] == NEW
    assert [start for start, _ in requests] == [0] + [piece_start(d) for d in drops], (drops, requests)
    fetched = sum(n for _, n in requests)
    assert fetched == len(PACKED) + sum(d - piece_start(d) for d in drops), (drops, requests)
