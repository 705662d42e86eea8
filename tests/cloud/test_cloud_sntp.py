"""The stand-in's SNTP server: proper server replies from the host clock, where it listens,
and the "ntp" entry that provisioning writes for devices."""

from __future__ import annotations

import json
import random
import socket
import struct

import pytest

from fotatools.backend import DEFAULT_NTP, Endpoint, ThingCredentials
from fotatools.cloud import daemon
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.sntp import (NTP_DELTA, SntpServer, bind, device_address, loopback_candidates,
                                  ntp_stamp, reply)
from fotatools.provisioning import check_device_folder, write_device_folder


def client_request(version: int = 4, mode: int = 3, nonce: bytes = b"\x12\x34\x56\x78\x9a\xbc\xde\xf0",
                   length: int = 48) -> bytes:
    req = bytearray(max(length, 48))
    req[0] = version << 3 | mode
    req[2] = 6  # poll
    req[40:48] = nonce
    return bytes(req[:length])


def unpack(answer: bytes) -> dict:
    li_vn_mode, stratum, poll, precision = struct.unpack_from("!BBbb", answer, 0)
    stamps = [struct.unpack_from("!II", answer, off) for off in (16, 24, 32, 40)]
    return {"li": li_vn_mode >> 6, "version": li_vn_mode >> 3 & 7, "mode": li_vn_mode & 7,
            "stratum": stratum, "poll": poll, "precision": precision, "refid": answer[12:16],
            "originate": answer[24:32], "receive": stamps[2], "transmit": stamps[3]}


@pytest.mark.parametrize("version", [3, 4])
def test_reply_is_a_server_answer_to_the_request(version):
    now = 1_795_000_000.25
    answer = reply(client_request(version), now - 0.5, now)
    assert answer is not None and len(answer) == 48
    a = unpack(answer)
    assert (a["li"], a["version"], a["mode"], a["stratum"], a["poll"]) == (0, version, 4, 1, 6)
    assert a["refid"] == b"LOCL"
    assert a["originate"] == b"\x12\x34\x56\x78\x9a\xbc\xde\xf0"  # the client's transmit time
    assert a["transmit"] == (1_795_000_000 + NTP_DELTA, 2**30)  # .25 s as a binary fraction
    assert a["receive"][0] == 1_794_999_999 + NTP_DELTA


@pytest.mark.parametrize("request_", [
    client_request(length=47),  # short
    client_request(mode=4),  # a server's packet
    client_request(mode=5),  # broadcast
    client_request(version=0),
    client_request(version=5),
    b"",
])
def test_anything_but_a_client_request_gets_no_answer(request_):
    assert reply(request_, 1e9, 1e9) is None


def test_ntp_stamp_counts_from_1900():
    assert ntp_stamp(0) == struct.pack("!II", NTP_DELTA, 0)
    assert ntp_stamp(1.5) == struct.pack("!II", NTP_DELTA + 1, 2**31)
    # a clock of today keeps its last fraction bit (2**-22 s): the fraction is taken from t - secs
    assert ntp_stamp(1_700_000_000 + 2**-22) == struct.pack("!II", NTP_DELTA + 1_700_000_000, 1024)


def test_loopback_candidates_are_twenty_addresses_of_127_8_but_not_127_0():
    assert len(loopback_candidates(random.Random(1))) == 20  # tries on port 123 before a free port
    got = [[int(x) for x in a.split(".")] for a in loopback_candidates(random.Random(1), 5000)]
    assert {a[0] for a in got} == {127}
    for i, (low, high) in ((1, (1, 254)), (2, (0, 255)), (3, (1, 254))):
        assert min(a[i] for a in got) == low and max(a[i] for a in got) == high, i


def test_server_answers_over_udp_from_its_clock():
    server = SntpServer(bind("127.0.0.1", 0), clock=lambda: 1_800_000_000.0).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(client_request(mode=4), server.address)  # ignored
            s.sendto(client_request(), server.address)
            a = unpack(s.recv(100))
        assert a["transmit"][0] == 1_800_000_000 + NTP_DELTA and a["mode"] == 4
    finally:
        server.stop()
    assert server.answered == 1  # the server's packet got none


def test_device_address_names_the_port_only_when_not_123():
    assert device_address("127.9.8.7", 123) == "127.9.8.7"
    assert device_address("127.0.0.1", 40123) == "127.0.0.1:40123"


def test_the_stand_in_serves_sntp_where_state_json_says(cloud_home, cloud):
    home = cloud_home[0]
    state = json.loads((home / "cloud" / "state.json").read_text())
    host, port = state["ntp_bind"]
    assert state["ntp"] == device_address(host, port)
    assert host.startswith("127.")  # loopback only without --host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(client_request(), (host, port))
        a = unpack(s.recv(100))
    assert a["mode"] == 4 and a["originate"] == client_request()[40:48]
    assert json.loads((home / "cloud" / "ports.json").read_text())["ntp"] == [host, port]


def test_sntp_address_is_kept_over_a_restart(tmp_path):
    home = tmp_path / "home"
    first = daemon.start(home, owned=True)
    try:
        daemon.stop(home)
        second = daemon.start(home, owned=True)
        assert second.ntp == first.ntp and second.ntp_bind == first.ntp_bind
    finally:
        daemon.stop(home)


def test_provisioning_writes_the_ntp_entry(tmp_path, cloud, backend):
    config = write_device_folder(backend.provision("ntp-thing-1"), tmp_path / "dev", tmp_path / "home")
    assert config["ntp"] == cloud.ntp
    assert json.loads((tmp_path / "dev" / "config.json").read_text())["ntp"] == cloud.ntp


def test_aws_devices_get_the_public_default(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    thing = ca.issue("aws-thing")
    creds = ThingCredentials("aws-thing", thing.cert_pem, thing.key_pem, "0" * 64,
                             Endpoint("xxxx-ats.iot.eu-west-1.amazonaws.com", 8883, ca.cert_pem))
    config = write_device_folder(creds, tmp_path / "dev", tmp_path / "home")
    # three independent public services: one that lies is outvoted by the two others
    assert config["ntp"] == list(DEFAULT_NTP) == ["time.aws.com", "time.cloudflare.com", "pool.ntp.org"]


def test_the_default_servers_are_the_devices_default():
    from tests.device.mpy import run_json
    assert run_json("import json\nfrom fota import clock\nprint(json.dumps(clock.DEFAULT))") == list(DEFAULT_NTP)


@pytest.mark.parametrize("ntp,ok", [
    ("time.aws.com", True), ("127.0.0.1:40123", True), ("", True), ([], True),
    (["time.aws.com", "pool.ntp.org:123"], True),
    ("host:0", False), ("host:65536", False), ("host:x", False), (":123", False), ("a b", False),
    (5, False), (["ok", 5], False), ({"host": "x"}, False), (["ok", "host:"], True),
])
def test_the_ntp_setting_is_checked_before_it_reaches_a_board(tmp_path, ntp, ok):
    ca = LocalCA(tmp_path / "ca").ensure()
    thing = ca.issue("a-thing")
    creds = ThingCredentials("a-thing", thing.cert_pem, thing.key_pem, "0" * 64,
                             Endpoint("broker.example", 8883, ca.cert_pem, ntp=ntp))
    folder = tmp_path / "dev"
    write_device_folder(creds, folder, tmp_path / "home")
    if ok:
        assert check_device_folder(folder)["ntp"] == ntp
    else:
        with pytest.raises(ValueError, match='"ntp"'):
            check_device_folder(folder)
