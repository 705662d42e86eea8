"""The local stand-in's control plane run inside the test, on a clock the test moves.

The jobs engine, its database, the object store and the control API are the stand-in's own; only
the broker is left out (what the engine publishes goes nowhere) and time is the test's: a Jobs
minute passes when the test says so, so a rollout rate releases exactly when a test expects it.
Devices are played through the engine's device-side API (the Jobs MQTT requests, handed to it as
the broker would). `fota` runs in this process against it, through the state folder as usual.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from fotatools import cli
from fotatools.cloud.ca import LocalCA
from fotatools.cloud.control import ControlApi, ControlServer
from fotatools.cloud.daemon import CloudInfo, Paths
from fotatools.cloud.db import Database
from fotatools.cloud.jobs import JobsEngine
from fotatools.cloud.store import ObjectStore

MINUTE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


class StandIn:
    def __init__(self, home: Path):
        self.home = home
        paths = Paths(home)
        paths.root.mkdir(parents=True)
        self.clock = Clock()
        self.db = Database(paths.db)
        store = ObjectStore(paths.store, b"s" * 32)
        self.engine = JobsEngine(self.db, presign=store.presign, minute=MINUTE, clock=self.clock)
        self.api = ControlApi(self.engine, store, LocalCA(paths.ca), "localhost", 8883)
        self.server = ControlServer(self.api, "token").start()
        paths.token.write_text("token")
        url = f"http://127.0.0.1:{self.server.port}"
        info = CloudInfo(home=str(home), pid=0, mosquitto_pid=0, mqtt_host="localhost",
                         mqtt_port=8883, store_port=0, control_port=self.server.port,
                         control_url=url, token_path=str(paths.token), ca_pem="", ca_der="",
                         minute=MINUTE, started_at=self.clock.now)
        paths.state.write_text(json.dumps(dataclasses.asdict(info)))

    def close(self) -> None:
        self.server.stop()
        self.db.close()

    # -- the fleet ---------------------------------------------------------------------------
    def things(self, *names: str) -> list[str]:
        for name in names:
            self.engine.create_thing(name)
        return list(names)

    def group(self, name: str, things: list[str]) -> None:
        self.engine.create_thing_group(name)
        for t in things:
            self.engine.add_thing_to_group(name, t)

    def minute(self) -> None:
        """One Jobs minute passes: the rollout releases its next things."""
        self.clock.now += MINUTE
        self.engine.tick()

    # -- a device, through the Jobs MQTT API --------------------------------------------------
    def device(self, thing: str, job_id: str, *states: str) -> None:
        """The thing reports these states of its execution of the job, in turn."""
        for state in states:
            self.engine.handle(f"$aws/things/{thing}/jobs/{job_id}/update",
                               json.dumps({"status": state}).encode())

    def execution(self, job_id: str, thing: str) -> dict[str, Any] | None:
        return self.db.get_execution(job_id, thing)

    # -- fota, in this process ----------------------------------------------------------------
    def fota(self, capsys: Any, *args: Any) -> tuple[int, str, str]:
        code = cli.main(["--home", str(self.home), *map(str, args)])
        out = capsys.readouterr()
        return code, out.out, out.err

    def status(self, capsys: Any, job_id: str) -> tuple[int, dict[str, Any]]:
        code, out, err = self.fota(capsys, "status", job_id, "--json")
        assert not err, err
        return code, json.loads(out)
