"""tools/fotatools/cloud/db.py's provisioned_things, the list the daemon hands the broker at
start (daemon.py: broker.start(db.provisioned_things(), ...)) so that every thing that has a
certificate may use its own topics again after a restart: each such thing once, in name order;
a certificate of no thing lets no one in."""

from __future__ import annotations

from fotatools.cloud.broker import dynsec_config
from fotatools.cloud.db import Database


def test_provisioned_things_are_the_things_with_a_certificate_each_once_in_order(tmp_path):
    db = Database(tmp_path / "cloud.db")
    try:
        assert db.provisioned_things() == []
        db.add_certificate("c1", "b", "pem", 1.0)
        db.add_certificate("c2", "a", "pem", 2.0)
        db.add_certificate("c3", "b", "pem", 3.0)  # a second certificate of b
        db.add_certificate("c4", "", "pem", 4.0)  # detached from its thing
        things = db.provisioned_things()
        assert things == ["a", "b"]
        # what the broker is started with: a role and a client for each of them
        users = [c["username"] for c in dynsec_config(things)["clients"]]
        assert users[-2:] == ["a", "b"]
        assert {"thing:a", "thing:b"} <= {r["rolename"] for r in dynsec_config(things)["roles"]}
    finally:
        db.close()
