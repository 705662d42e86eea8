"""MicroPython (unix port, mbedTLS) as the device: DER certificate and key, the broker, the
Jobs API and a ranged download from a presigned URL, with the server certificate verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cloud.conftest import unique
from cryptography import x509
from cryptography.hazmat.primitives import serialization

MICROPYTHON = Path(sys.executable).with_name("micropython")

SCRIPT = r"""
import socket, ssl, json, struct, sys
def rd(p):
    with open(p, 'rb') as f:
        return f.read()
cfg = json.loads(rd('cfg.json'))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(cadata=rd('ca.der'))
ctx.load_cert_chain(rd('cert.der'), rd('key.der'))

def tls(port):
    s = socket.socket()
    s.connect(socket.getaddrinfo('localhost', port)[0][-1])
    return ctx.wrap_socket(s, server_hostname='localhost')

def packet(kind, body):
    n = len(body)
    out = bytearray([kind])
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            break
    return bytes(out) + body

def mqtt_str(x):
    return struct.pack('!H', len(x)) + x

def read_packet(s):
    h = s.read(1)[0]
    n = sh = 0
    while True:
        b = s.read(1)[0]
        n |= (b & 0x7f) << sh
        sh += 7
        if not b & 0x80:
            break
    return h, s.read(n)

out = {}
thing = cfg['thing'].encode()
s = tls(cfg['mqtt_port'])
s.write(packet(0x10, b'\x00\x04MQTT\x04\x02\x00\x3c' + mqtt_str(thing)))
out['connack'] = list(read_packet(s)[1])
base = b'$aws/things/' + thing + b'/jobs/'
s.write(packet(0x82, b'\x00\x01' + mqtt_str(base + b'+/get/accepted') + b'\x00'))
out['suback_own'] = read_packet(s)[1][2]
s.write(packet(0x82, b'\x00\x02' + mqtt_str(b'$aws/things/' + cfg['other'].encode() + b'/jobs/#') + b'\x00'))
out['suback_other'] = read_packet(s)[1][2]
s.write(packet(0x30, mqtt_str(base + cfg['job'].encode() + b'/get') + b'{"clientToken":"mp"}'))
h, d = read_packet(s)
tl = struct.unpack('!H', d[:2])[0]
out['topic'] = d[2:2 + tl].decode()
msg = json.loads(d[2 + tl:])
out['token'] = msg['clientToken']
url = msg['execution']['jobDocument']['url']
s.close()

rest = url.split('://', 1)[1]
hostport, path = rest.split('/', 1)
port = int(hostport.split(':')[1])
h = tls(port)
h.write(('GET /' + path + ' HTTP/1.0\r\nHost: localhost\r\nRange: bytes=4-11\r\n\r\n').encode())
resp = b''
while True:
    chunk = h.read(1024)
    if not chunk:
        break
    resp += chunk
head, body = resp.split(b'\r\n\r\n', 1)
out['status'] = head.split(b'\r\n')[0].decode()
out['body'] = list(body)
print(json.dumps(out))
"""


def der_cert(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


@pytest.mark.skipif(not MICROPYTHON.exists(), reason="MicroPython unix port not installed")
def test_micropython_device(backend, cloud, tmp_path: Path, firmware_url):
    thing, other = unique("mpy"), unique("other")
    creds = backend.provision(thing)
    backend.provision(other)
    job_id = unique("mpjob")
    backend.call("CreateJob", {"jobId": job_id, "targets": [backend.thing_arn(thing)],
                               "document": json.dumps({"url": f"${{aws:iot:s3-presigned-url:{firmware_url}}}"})})
    key = serialization.load_pem_private_key(creds.private_key_pem, None)
    (tmp_path / "cert.der").write_bytes(der_cert(creds.certificate_pem))
    (tmp_path / "key.der").write_bytes(key.private_bytes(serialization.Encoding.DER,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (tmp_path / "ca.der").write_bytes(der_cert(creds.endpoint.ca_pem))
    (tmp_path / "cfg.json").write_text(json.dumps({"thing": thing, "other": other, "job": job_id,
                                                   "mqtt_port": creds.endpoint.port}))
    (tmp_path / "device.py").write_text(SCRIPT)
    r = subprocess.run([str(MICROPYTHON), "device.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["connack"] == [0, 0]
    assert out["suback_own"] == 0 and out["suback_other"] == 0x80
    assert out["topic"] == f"$aws/things/{thing}/jobs/{job_id}/get/accepted" and out["token"] == "mp"
    assert out["status"].startswith("HTTP/1.1 206")
    assert out["body"] == list((bytes(range(256)) * 64)[4:12])
