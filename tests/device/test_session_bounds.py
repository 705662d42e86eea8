"""The MQTT session's reads are bounded (lib/fota/awsiot.py, READ_S): a broker that never
answers the TLS handshake, or that stops in the middle of a message, costs the board that
long, then an OSError the loop answers by connecting again; it never holds the board until its
watchdog resets it. umqtt.simple itself makes its socket blocking for good in the middle of a
message."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.device.mpy import run_json


class StallBroker:
    """TLS on 127.0.0.1: `silent` never answers the handshake; `half` answers CONNECT with a
    CONNACK, then sends the first bytes of a PUBLISH and nothing more. The connection stays
    open until the test ends."""

    def __init__(self, cert: Path, key: Path, mode: str) -> None:
        self.mode = mode
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            if self.mode == "half":
                tls = self.ctx.wrap_socket(conn, server_side=True)
                tls.recv(1)  # CONNECT
                n = shift = 0
                while True:
                    b = tls.recv(1)[0]
                    n |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                while n:
                    n -= len(tls.recv(n))
                tls.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
                tls.sendall(b"\x30\x64\x00")  # PUBLISH of 100 bytes: 2 of them, and no more
            self.stop.wait(60)

    def __enter__(self) -> "StallBroker":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()


def client_files(folder: Path) -> tuple[Path, Path]:
    """A device certificate and key (DER): the broker here does not look at them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (folder / "dev.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    (folder / "dev.key.der").write_bytes(key.private_bytes(serialization.Encoding.DER,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return folder / "dev.der", folder / "dev.key.der"


SESSION = """
import json
from fota.awsiot import Connection
conn = Connection(json.loads({cfg!r}), read_s=2)
out = []
try:
    conn.connect()
    out.append("connected")
    conn.wait(5000)
    out.append("no error")
except OSError as e:
    out.append("OSError %d" % e.args[0])
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode,want", [("silent", ["OSError 110"]), ("half", ["connected", "OSError 110"])])
def test_a_broker_that_stops_costs_the_read_bound(pki, tmp_path, mode, want):
    cert, key = client_files(tmp_path)
    with StallBroker(pki["cert"], pki["key"], mode) as broker:
        cfg = {"thing": "dev", "endpoint": "localhost", "port": broker.port, "cert": str(cert),
               "key": str(key), "ca": str(pki["ca_der"]), "ntp": ""}
        out = run_json(SESSION.format(cfg=json.dumps(cfg)), timeout=30)  # 110: ETIMEDOUT
    assert out == want
