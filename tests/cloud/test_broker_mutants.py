"""The stand-in's broker process (tools/fotatools/cloud/broker.py), on its own: where it listens."""

from __future__ import annotations

import socket
from pathlib import Path

from fotatools.cloud.broker import Broker, free_port
from fotatools.cloud.ca import LocalCA


def test_a_port_given_to_start_is_the_port_it_listens_on(tmp_path: Path):
    ca = LocalCA(tmp_path / "ca").ensure()
    server = ca.issue_server(tmp_path / "server")
    b = Broker(tmp_path / "broker", ca.cert_path, server.cert_pem, server.key_pem)
    port = free_port()
    try:
        assert b.start([], port=port) == port and b.port == port
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert f"listener {port}" in b.conf_path.read_text()
    finally:
        b.stop()
