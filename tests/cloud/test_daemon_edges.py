"""tools/fotatools/cloud/daemon.py's checks that come before anything is started."""

from __future__ import annotations

import pytest

from fotatools.cloud import daemon
from fotatools.cloud.daemon import CloudError


@pytest.mark.parametrize("hosts, why", [
    (["bad host"], "not a DNS name"), (["0.0.0.0"], "not an address a device can connect to"),
    (["224.0.0.1"], "not an address a device can connect to"),
    (["255.255.255.255"], "not an address a device can connect to"), ([""], "give a DNS name"),
])
def test_a_bad_host_name_is_refused_before_anything_starts(tmp_path, hosts, why):
    with pytest.raises(CloudError, match=f"bad host.*{why}"):
        daemon.start(tmp_path / "home", hosts=hosts)
    assert not (tmp_path / "home").exists()
    assert daemon.check_hosts(["example.com", "10.0.0.2", "example.com"]) == ["example.com", "10.0.0.2"]
