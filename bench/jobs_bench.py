"""Benchmark of the local AWS IoT stand-in's jobs service, on loopback.

Figures (printed as JSON):
- Jobs API round trips per second and latency percentiles with `--things` devices (paho-mqtt
  clients over TLS, one connection each) all asking at once, each making `--requests` describe
  requests in a closed loop (next request when the answer came);
- the time of one CreateJob for a thing group of `--group` things (executions created and
  notifications published), and of provisioning the devices.
Everything runs in a temporary state folder and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from fotatools.cloud import daemon  # noqa: E402
from fotatools.cloud.client import LocalBackend  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


class BenchThing:
    """One device asking `requests` times for its job execution, one request at a time."""

    def __init__(self, creds, folder: Path, job_id: str, requests: int, done: threading.Semaphore):
        self.name = creds.thing_name
        self.job_id = job_id
        self.left = requests
        self.latencies: list[float] = []
        self.errors = 0
        self.done = done
        self.sent_at = 0.0
        folder.mkdir(parents=True, exist_ok=True)
        for fname, data in (("c.pem", creds.certificate_pem), ("k.pem", creds.private_key_pem),
                            ("ca.pem", creds.endpoint.ca_pem)):
            (folder / fname).write_bytes(data)
        ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        ctx.load_cert_chain(str(folder / "c.pem"), str(folder / "k.pem"))
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.name, protocol=mqtt.MQTTv311)
        self.client.tls_set_context(ctx)
        self.topic = f"$aws/things/{self.name}/jobs/{job_id}/get"
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(creds.endpoint.host, creds.endpoint.port, keepalive=60)
        self.client.loop_start()
        self.client.subscribe(self.topic + "/+", qos=1)

    @staticmethod
    def _on_connect(client, userdata, flags, reason, props) -> None:
        sock = client.socket()
        if sock is not None:  # a device's single-packet writes: no Nagle delay on our side
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self) -> None:
        self.sent_at = time.perf_counter()
        self.client.publish(self.topic, b'{"includeJobDocument":false}', qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        self.latencies.append(time.perf_counter() - self.sent_at)
        if msg.topic.endswith("/rejected"):
            self.errors += 1
        self.left -= 1
        if self.left > 0:
            self._send()
        else:
            self.done.release()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--things", type=int, default=100, help="devices talking at once (default 100)")
    ap.add_argument("--requests", type=int, default=50, help="requests per device (default 50)")
    ap.add_argument("--group", type=int, default=1000, help="things in the group job (default 1000)")
    ap.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    args = ap.parse_args(argv)
    if not (1 <= args.things <= 1000 and 1 <= args.requests <= 10000 and 1 <= args.group <= 10000):
        ap.error("--things 1..1000, --requests 1..10000, --group 1..10000")
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="fota-bench-") as tmp:
        home = Path(tmp)
        daemon.start(home)
        backend = LocalBackend(home)
        things: list[BenchThing] = []
        try:
            t0 = time.perf_counter()
            creds = [backend.provision(f"bench-{i:04d}") for i in range(args.things)]
            provision_s = time.perf_counter() - t0
            backend.call("CreateJob", {"jobId": "bench", "document": '{"operation":"bench"}',
                                       "targets": [backend.thing_arn(c.thing_name) for c in creds]})
            done = threading.Semaphore(0)
            things = [BenchThing(c, home / "devices" / c.thing_name, "bench", args.requests, done)
                      for c in creds]
            for t in things:
                if not t.subscribed.wait(30):
                    raise RuntimeError(f"{t.name} could not subscribe")
            start = time.perf_counter()
            for t in things:
                t._send()
            deadline = start + args.timeout
            finished = 0
            while finished < len(things) and time.perf_counter() < deadline:
                if done.acquire(timeout=max(0.0, deadline - time.perf_counter())):
                    finished += 1
            wall = time.perf_counter() - start
            lat = [x for t in things for x in t.latencies]
            result["round_trips"] = {
                "things": args.things, "requests": len(lat), "complete": finished == len(things),
                "rejected": sum(t.errors for t in things), "seconds": round(wall, 3),
                "per_second": round(len(lat) / wall, 1) if wall > 0 else None,
                "latency_ms": {"p50": round(percentile(lat, 50) * 1000, 2),
                               "p90": round(percentile(lat, 90) * 1000, 2),
                               "p99": round(percentile(lat, 99) * 1000, 2),
                               "max": round(max(lat) * 1000, 2) if lat else None},
            }
            result["provision"] = {"things": args.things, "seconds": round(provision_s, 3),
                                   "per_second": round(args.things / provision_s, 1)}
            for t in things:
                t.close()
            things = []

            names = [f"member-{i:05d}" for i in range(args.group)]
            t0 = time.perf_counter()
            for n in names:
                backend.call("CreateThing", {"thingName": n})
            group_arn = backend.create_thing_group("bench-group", names)
            setup_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            backend.call("CreateJob", {"jobId": "bench-group-job", "targets": [group_arn],
                                       "document": '{"operation":"bench"}'})
            create_s = time.perf_counter() - t0
            queued = backend.describe_job("bench-group-job").counts["QUEUED"]
            result["group_job"] = {"things": args.group, "create_job_seconds": round(create_s, 3),
                                   "executions_queued": queued,
                                   "group_setup_seconds": round(setup_s, 3)}
        finally:
            for t in things:
                t.close()
            daemon.stop(home)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
