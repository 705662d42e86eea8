"""Run the whole AWS IoT stand-in as one process: broker (mosquitto, a child), jobs and
streams service, object store and control API.

`start(home)` spawns it in the background and waits until every part answers; `stop(home)`
ends it (and whatever a crashed run left behind); `status(home)` reports; `run(home)` runs it
in the foreground until SIGINT/SIGTERM. Everything lives in `home/cloud/`; `state.json` there
says where each part listens. Ports are free ones picked at start, never fixed.

By default everything listens on 127.0.0.1 and devices use `localhost`. `hosts` (`--host NAME`,
DNS names or IPv4 addresses by which devices on the network reach this machine) puts those
names into the server certificate, makes the broker's listener and the object store listen on
every interface and gives devices the first name as endpoint and presigned-URL host; the jobs
service and the control API stay on loopback. The names are kept in `hosts.json` for the next
start.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .broker import ADMIN_CN, Broker, _cmdline, _pid_alive
from .ca import LocalCA, check_host, serial_number
from .control import ControlApi, ControlServer, load_token
from .db import Database
from .jobs import SERVICE_CN, JobsEngine, JobsService, minute_seconds
from .sntp import SntpServer, device_address, open_socket
from .store import ObjectStore, StoreServer
from .shadow import ShadowEngine
from .streams import StreamsEngine

log = logging.getLogger("fotatools.cloud")

MODULE = "fotatools.cloud.daemon"
PROBE_CN = "broker.crl-probe"  # never a valid thing name (no dots in thing names)


class CloudError(RuntimeError):
    """The local cloud could not be started, stopped or reached."""


class CloudConflict(CloudError):
    """A start asked for other settings than those of the stand-in already running."""


@dataclass
class CloudInfo:
    """Where the running stand-in listens (the content of home/cloud/state.json)."""

    home: str
    pid: int
    mosquitto_pid: int
    mqtt_host: str
    mqtt_port: int
    store_port: int
    control_port: int
    control_url: str
    token_path: str
    ca_pem: str
    ca_der: str
    minute: float
    started_at: float
    hosts: list[str] = field(default_factory=list)  # --host names; [] = loopback only
    bind: str = "127.0.0.1"  # where the broker's listener and the object store listen
    ntp: str = ""  # the SNTP server, as devices' config.json names it ("host" or "host:port")
    ntp_bind: list[Any] = field(default_factory=list)  # [address, port] it listens on

    @classmethod
    def load(cls, path: Path) -> "CloudInfo":
        data = json.loads(path.read_text())
        # a missing field without a default is a TypeError, as a missing file is an OSError
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def token(self) -> str:
        return Path(self.token_path).read_text().strip()


def check_hosts(hosts: list[str] | tuple[str, ...]) -> list[str]:
    """`--host` names checked and normalised (see `ca.check_host`), in order, without repeats;
    ValueError for a bad one."""
    out: list[str] = []
    for h in hosts:
        name = check_host(h)
        if name not in out:
            out.append(name)
    return out


def cloud_dir(home: Path) -> Path:
    return Path(home).resolve() / "cloud"


class Paths:
    def __init__(self, home: Path):
        self.root = cloud_dir(home)
        self.ca = self.root / "ca"
        self.server = self.root / "server"
        self.service = self.root / "service"
        self.admin = self.root / "admin"
        self.broker = self.root / "broker"
        self.store = self.root / "store"
        self.secret = self.root / "store.secret"
        self.token = self.root / "control.token"
        self.db = self.root / "cloud.db"
        self.state = self.root / "state.json"
        self.pid = self.root / "daemon.pid"
        self.lock = self.root / "daemon.lock"
        self.log = self.root / "daemon.log"
        self.ports = self.root / "ports.json"
        self.hosts = self.root / "hosts.json"


def remembered_hosts(home: Path) -> list[str]:
    """The `--host` names of the last start (kept in hosts.json); [] when none."""
    try:
        data = json.loads(Paths(home).hosts.read_text())
        return check_hosts(data["hosts"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _port_again(paths: Paths, name: str, bind: str = "127.0.0.1") -> int:
    """The port this service had in the last run, if it is free now (devices keep the endpoint
    they were provisioned with across a restart); 0 (any free port) otherwise."""
    try:
        port = int(json.loads(paths.ports.read_text())[name])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind it
        try:
            s.bind((bind, port))
        except OSError:
            return 0
    return port


def _ntp_again(paths: Paths, bind_all: bool) -> tuple[str, int] | None:
    """The SNTP server's address of the last run, if it was bound the same way (a loopback
    address of its own, or every interface)."""
    try:
        host, port = json.loads(paths.ports.read_text())["ntp"]
        again = (str(host), int(port))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return again if (again[0] == "0.0.0.0") == bind_all else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _crl_updater(ca: LocalCA, db: Database, broker: Broker, crl: Path) -> Callable[[], None]:
    """What the control API calls when a certificate's status changed: a new revocation list
    with every certificate that is not ACTIVE, taken up by the running broker before it returns.
    A throwaway certificate revoked only in the new list shows when the broker has it."""
    lock = threading.Lock()

    def update() -> None:
        with lock:
            probe = LocalCA.save(ca.issue(PROBE_CN), crl.parent, "crl-probe")
            try:
                serials = [serial_number(pem) for pem in db.inactive_certificates()]
                ca.write_crl(crl, serials + [serial_number(probe.cert_pem.read_bytes())])
                broker.reload_crl(probe.cert_pem, probe.key_pem)
            finally:
                for f in (probe.cert_pem, probe.key_pem, probe.cert_der, probe.key_der):
                    f.unlink(missing_ok=True)
    return update


# ------------------------------------------------------------------------------------------
# the foreground process
# ------------------------------------------------------------------------------------------
def run(home: Path, minute: float | None = None, stop_event: threading.Event | None = None,
        owner_pid: int | None = None, hosts: list[str] | None = None,
        clock: Callable[[], float] = time.time) -> None:
    """Run the stand-in in this process until SIGINT/SIGTERM (or `stop_event`, or the end of
    process `owner_pid`). `hosts`: names devices reach this machine by (None: those of the last
    start; []: loopback only). `clock`: the Jobs API's time (rollout rates, timeouts), which a
    test running the stand-in in a thread may move itself."""
    hosts = remembered_hosts(home) if hosts is None else check_hosts(hosts)
    bind = "0.0.0.0" if hosts else "127.0.0.1"
    device_host = hosts[0] if hosts else "localhost"
    paths = Paths(home)
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = open(paths.lock, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise CloudError(f"another local cloud is already running on {paths.root}") from None
    minute = minute_seconds() if minute is None else float(minute)
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    parts: list[Any] = []
    db: Database | None = None
    try:
        ca = LocalCA(paths.ca).ensure()
        server = ca.server_for(paths.server, hosts)
        service = ca.existing(paths.service, SERVICE_CN) or ca.issue_client(SERVICE_CN, paths.service)
        admin = ca.existing(paths.admin, ADMIN_CN) or ca.issue_client(ADMIN_CN, paths.admin)
        db = Database(paths.db)
        crl = paths.broker / "crl.pem"
        ca.write_crl(crl, [serial_number(pem) for pem in db.inactive_certificates()])
        broker = Broker(paths.broker, ca.cert_path, server.cert_pem, server.key_pem,
                        admin.cert_pem, admin.key_pem, bind=bind, crl_pem=crl)
        port = broker.start(db.provisioned_things(), port=_port_again(paths, "mqtt", bind) or None)
        parts.append(broker)
        store = ObjectStore(paths.store, ObjectStore.load_secret(paths.secret), host=device_host)
        store_server = StoreServer(store, server.cert_pem, server.key_pem,
                                   port=_port_again(paths, "store", bind), bind=bind).start()
        parts.append(store_server)
        sntp = SntpServer(open_socket(bool(hosts), _ntp_again(paths, bool(hosts)))).start()
        parts.append(sntp)
        ntp_host, ntp_port = sntp.address
        ntp = device_address(device_host if hosts else ntp_host, ntp_port)
        engine = JobsEngine(db, presign=store.presign, minute=minute, clock=clock)
        streams = StreamsEngine(db, store)
        shadows = ShadowEngine(db)
        jobs = JobsService(engine, "localhost", port, ca.cert_path, service.cert_pem, service.key_pem,
                           streams=streams, shadows=shadows).start()
        parts.append(jobs)
        api = ControlApi(engine, store, ca, device_host, port, allow_thing=broker.allow_thing,
                         streams=streams, shadows=shadows, certificates_changed=_crl_updater(ca, db, broker, crl))
        control = ControlServer(api, load_token(paths.token), port=_port_again(paths, "control")).start()
        parts.append(control)
        info = CloudInfo(home=str(Path(home).resolve()), pid=os.getpid(), mosquitto_pid=broker.pid or 0,
                         mqtt_host=device_host, mqtt_port=port, store_port=store_server.port,
                         control_port=control.port, control_url=f"http://127.0.0.1:{control.port}",
                         token_path=str(paths.token), ca_pem=str(ca.cert_path), ca_der=str(ca.cert_der_path),
                         minute=minute, started_at=time.time(), hosts=hosts, bind=bind,
                         ntp=ntp, ntp_bind=[ntp_host, ntp_port])
        paths.pid.write_text(f"{os.getpid()}\n")
        _write_json(paths.ports, {"mqtt": port, "store": store_server.port, "control": control.port,
                                  "ntp": [ntp_host, ntp_port]})
        _write_json(paths.hosts, {"hosts": hosts})
        _write_json(paths.state, asdict(info))
        log.info("local cloud ready: mqtts://%s:%d store https://%s:%d (listening on %s) control %s "
                 "ntp %s (minute = %gs)", device_host, port, device_host, store_server.port, bind,
                 info.control_url, ntp, minute)
        while not stop.wait(0.5):
            if broker.proc is not None and broker.proc.poll() is not None:
                log.error("mosquitto exited (%s); stopping", broker.proc.returncode)
                break
            if owner_pid is not None and not _pid_alive(owner_pid):
                log.info("process %d that owned this cloud is gone; stopping", owner_pid)
                break
    finally:
        paths.state.unlink(missing_ok=True)
        for part in reversed(parts):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %s failed", type(part).__name__)
        if db is not None:
            db.close()
        paths.pid.unlink(missing_ok=True)
        lock.close()
        log.info("local cloud stopped")


# ------------------------------------------------------------------------------------------
# managing the background process
# ------------------------------------------------------------------------------------------
def _is_daemon(pid: int) -> bool:
    return pid > 0 and _pid_alive(pid) and MODULE in _cmdline(pid)


def _control(info: CloudInfo, op: str, params: dict[str, Any] | None = None, timeout: float = 5) -> Any:
    req = urllib.request.Request(f"{info.control_url}/{op}", data=json.dumps(params or {}).encode(),
                                 headers={"Authorization": f"Bearer {info.token}",
                                          "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _running_info(home: Path) -> CloudInfo | None:
    paths = Paths(home)
    try:
        info = CloudInfo.load(paths.state)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _is_daemon(info.pid):
        return None
    try:
        _control(info, "Status", timeout=3)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return info


def start(home: Path, minute: float | None = None, timeout: float = 30.0,
          owned: bool = False, hosts: list[str] | None = None) -> CloudInfo:
    """Start the stand-in in the background (or return the one already running on `home`).
    With `owned`, it stops by itself when this process ends (for tests). `hosts`: DNS names or
    IPv4 addresses by which devices on the network reach this machine (None: those of the last
    start; []: loopback only again)."""
    if hosts is not None:
        try:
            hosts = check_hosts(hosts)
        except ValueError as e:
            raise CloudError(str(e)) from None
    info = _running_info(home)
    if info is not None:
        if minute is not None and abs(info.minute - float(minute)) > 1e-9:
            raise CloudError(f"a local cloud with a {info.minute}s minute is already running on "
                             f"{cloud_dir(home)}; stop it first")
        if hosts is not None and hosts != info.hosts:
            now = ", ".join(info.hosts) or "loopback only"
            raise CloudConflict(f"a local cloud with hosts {now} is already running on "
                                f"{cloud_dir(home)}; stop it first (`fota cloud stop`)")
        return info
    stop(home)  # whatever a crashed or interrupted run left behind
    paths = Paths(home)
    paths.root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if minute is not None:
        env["FOTA_CLOUD_MINUTE"] = repr(float(minute))
    if "FOTA_CLOUD_MINUTE" in env:
        saved = os.environ.get("FOTA_CLOUD_MINUTE")
        os.environ["FOTA_CLOUD_MINUTE"] = env["FOTA_CLOUD_MINUTE"]
        try:
            minute_seconds()  # a bad value fails here, with a clear message
        except ValueError as e:
            raise CloudError(str(e)) from None
        finally:
            if saved is None:
                os.environ.pop("FOTA_CLOUD_MINUTE")
            else:
                os.environ["FOTA_CLOUD_MINUTE"] = saved
    with open(paths.log, "ab") as logf:
        argv = [sys.executable, "-m", MODULE, "run", "--home", str(Path(home).resolve())]
        if owned:
            argv += ["--owner-pid", str(os.getpid())]
        if hosts is not None:
            argv += [a for h in hosts for a in ("--host", h)] if hosts else ["--no-host"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = paths.log.read_text(errors="replace")[-3000:]
            raise CloudError(f"the local cloud exited at start (code {proc.returncode}); "
                             f"{paths.log} ends with:\n{tail}")
        try:
            info = CloudInfo.load(paths.state)
            if info.pid == proc.pid:
                _control(info, "Status", timeout=3)
                return info
        except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    proc.terminate()
    raise CloudError(f"the local cloud did not become ready within {timeout:.0f}s; see {paths.log}")


def stop(home: Path, timeout: float = 15.0) -> bool:
    """Stop the stand-in running on `home`, and any broker a crashed run left; True if
    something was running."""
    paths = Paths(home)
    stopped = False
    pids: set[int] = set()
    for src in (paths.pid,):
        try:
            pids.add(int(src.read_text().strip()))
        except (OSError, ValueError):
            pass
    try:
        pids.add(int(json.loads(paths.state.read_text())["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for pid in pids:
        if not _is_daemon(pid):
            continue
        stopped = True
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            _reap(pid)
    broker = Broker(paths.broker, paths.ca / "ca.cert.pem", paths.server / "server.cert.pem",
                    paths.server / "server.key.pem")
    if broker.pid_path.exists():
        broker.kill_stale()
    paths.state.unlink(missing_ok=True)
    paths.pid.unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect a child that has exited (start() spawned it from this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(home: Path) -> dict[str, Any]:
    """{"running": bool, ...where it listens..., "service": the Status operation's answer}."""
    paths = Paths(home)
    info = _running_info(home)
    if info is None:
        return {"running": False, "home": str(cloud_dir(home)), "stale": paths.state.exists()}
    out: dict[str, Any] = {"running": True, **asdict(info)}
    try:
        out["service"] = _control(info, "Status")
    except (OSError, ValueError, urllib.error.URLError) as e:
        out["service"] = {"error": str(e)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fotatools.cloud.daemon",
                                 description="the local AWS IoT stand-in (broker, jobs, store, control API)")
    ap.add_argument("command", choices=["run", "start", "stop", "status"])
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("FOTA_HOME", ".fota")),
                    help="state folder (default: $FOTA_HOME or ./.fota)")
    ap.add_argument("--minute", type=float, default=None,
                    help="seconds in one Jobs minute (default: $FOTA_CLOUD_MINUTE or 60)")
    ap.add_argument("--owner-pid", type=int, default=None,
                    help="run: stop when this process ends")
    ap.add_argument("--host", action="append", default=None, metavar="NAME",
                    help="a DNS name or IPv4 address devices reach this machine by (repeatable); "
                         "kept for later starts")
    ap.add_argument("--no-host", action="store_true", help="forget the kept --host names")
    args = ap.parse_args(argv)
    hosts: list[str] | None = [] if args.no_host else args.host
    try:
        if args.command == "run":
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
            run(args.home, args.minute, owner_pid=args.owner_pid, hosts=hosts)
        elif args.command == "start":
            print(json.dumps(asdict(start(args.home, args.minute, hosts=hosts)), indent=2))
        elif args.command == "stop":
            print("stopped" if stop(args.home) else "not running")
        else:
            print(json.dumps(status(args.home), indent=2))
    except (CloudError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
