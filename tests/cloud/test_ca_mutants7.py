"""tools/fotatools/cloud/ca.py: server_for keeps the server certificate already in its folder
when that certificate names exactly localhost, 127.0.0.1 and the hosts asked for (a restart of
the stand-in does not change the certificate devices see), and issues a new one (another serial)
when the hosts differ."""

from __future__ import annotations

from cryptography import x509

from fotatools.cloud.ca import LocalCA, cert_names


def serial(path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_the_same_hosts_keep_the_certificate_and_other_hosts_get_a_new_one(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    folder = tmp_path / "srv"
    first = ca.server_for(folder, ["fota.lan", "192.168.1.5"])
    pem, key = first.cert_pem.read_bytes(), first.key_pem.read_bytes()
    number = serial(first.cert_pem)
    again = ca.server_for(folder, ["192.168.1.5", "fota.lan"])  # same names, another order
    assert again.cert_pem == first.cert_pem
    assert again.cert_pem.read_bytes() == pem and again.key_pem.read_bytes() == key
    assert serial(again.cert_pem) == number
    other = ca.server_for(folder, ["fota.lan"])
    assert serial(other.cert_pem) != number
    assert cert_names(other.cert_pem) == {"localhost", "127.0.0.1", "fota.lan"}
