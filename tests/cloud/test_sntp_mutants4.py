"""tools/fotatools/cloud/sntp.py's open_socket: no right to bind port 123 (EACCES, an
unprivileged user) means no address will do, so it takes a free port at once; a refusal of the
last run's other port, for whatever reason, still leaves port 123 to try."""

from __future__ import annotations

import errno

from fotatools.cloud import sntp


def fake_bind(monkeypatch, refuse):
    """Replace sntp.bind: each call is recorded; `refuse(host, port)` gives an errno or None."""
    calls: list[tuple[str, int]] = []

    def bind(host: str, port: int):
        calls.append((host, port))
        err = refuse(host, port)
        if err is not None:
            raise OSError(err, "refused")
        return (host, port)

    monkeypatch.setattr(sntp, "bind", bind)
    return calls


def test_no_right_to_port_123_takes_a_free_port_after_one_try(monkeypatch):
    calls = fake_bind(monkeypatch, lambda host, port: errno.EACCES if port == sntp.NTP_PORT else None)
    assert sntp.open_socket(False) == ("127.0.0.1", 0)
    assert len(calls) == 2 and calls[0][1] == sntp.NTP_PORT and calls[0][0].startswith("127.")
    calls.clear()
    assert sntp.open_socket(True) == ("0.0.0.0", 0)
    assert calls == [("0.0.0.0", sntp.NTP_PORT), ("0.0.0.0", 0)]


def test_a_refused_last_port_other_than_123_still_tries_123(monkeypatch):
    calls = fake_bind(monkeypatch, lambda host, port: errno.EACCES if port == 40123 else None)
    assert sntp.open_socket(True, again=("0.0.0.0", 40123)) == ("0.0.0.0", sntp.NTP_PORT)
    assert calls == [("0.0.0.0", 40123), ("0.0.0.0", sntp.NTP_PORT)]
    calls.clear()
    host, port = sntp.open_socket(False, again=("127.0.0.1", 40123))
    assert port == sntp.NTP_PORT and host.startswith("127.") and len(calls) == 2
