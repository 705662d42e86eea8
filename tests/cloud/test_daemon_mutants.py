"""The stand-in's foreground process (tools/fotatools/cloud/daemon.py): the line its log gives
when it is ready, which tells a user where devices and the host reach it."""

from __future__ import annotations

import re

from tests.cloud.conftest import wait_until

from fotatools.cloud import daemon


def test_the_ready_line_names_each_address(cloud_home):
    home, info = cloud_home
    log = daemon.Paths(home).log
    # the line comes right after the state file daemon.start waited for: wait for it
    wait_until(lambda: re.search(r"local cloud ready[^\n]*\n", log.read_text(errors="replace")),
               what="the ready line")
    host = info.mqtt_host
    want = (f" INFO local cloud ready: mqtts://{host}:{info.mqtt_port} store https://{host}:{info.store_port} "
            f"(listening on {info.bind}) control {info.control_url} ntp {info.ntp} (minute = {info.minute:g}s)")
    assert [line for line in log.read_text().splitlines() if line.endswith(want)], log.read_text()[-2000:]
