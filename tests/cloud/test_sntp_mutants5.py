"""tools/fotatools/cloud/sntp.py's open_socket: port 123 taken on one loopback address
(EADDRINUSE, another stand-in's server there) is no reason to give up port 123: the next
address is tried, and only when every one is taken does it take a free port."""

from __future__ import annotations

import errno

from fotatools.cloud import sntp

from tests.cloud.test_sntp_mutants4 import fake_bind


def test_port_123_taken_on_one_loopback_address_tries_the_next(monkeypatch):
    taken: list[str] = []

    def refuse(host: str, port: int):
        if port == sntp.NTP_PORT and len(taken) < 2:
            taken.append(host)
            return errno.EADDRINUSE
        return None

    calls = fake_bind(monkeypatch, refuse)
    host, port = sntp.open_socket(False)
    assert port == sntp.NTP_PORT and host.startswith("127.") and host not in taken
    assert [p for _, p in calls] == [sntp.NTP_PORT] * 3


def test_port_123_taken_everywhere_takes_a_free_port(monkeypatch):
    calls = fake_bind(monkeypatch, lambda host, port: errno.EADDRINUSE if port else None)
    assert sntp.open_socket(False) == ("127.0.0.1", 0)
    assert len(calls) == 21 and all(p == sntp.NTP_PORT for _, p in calls[:-1])
    calls.clear()
    assert sntp.open_socket(True) == ("0.0.0.0", 0)
    assert calls == [("0.0.0.0", sntp.NTP_PORT), ("0.0.0.0", 0)]


def test_a_taken_last_port_of_123_still_tries_port_123_again(monkeypatch):
    """The last run's address (`again`) on port 123 but taken: port 123 on all interfaces next."""
    calls = fake_bind(monkeypatch, lambda host, port: errno.EADDRINUSE if host == "10.0.0.1" else None)
    assert sntp.open_socket(True, again=("10.0.0.1", sntp.NTP_PORT)) == ("0.0.0.0", sntp.NTP_PORT)
    assert calls == [("10.0.0.1", sntp.NTP_PORT), ("0.0.0.0", sntp.NTP_PORT)]
