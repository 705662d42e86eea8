"""The MQTT broker of the AWS IoT stand-in: mosquitto with TLS client certificates.

Only clients with a certificate from the local CA may connect; the certificate's CN becomes the
MQTT user name and the client id (whatever id the client asked for), so one thing cannot close
another thing's session by taking its client id. Access control mirrors the AWS IoT policy that
`fota provision` attaches, built on `${iot:Connection.Thing.ThingName}`: a provisioned thing may
publish, receive and subscribe only under `$aws/things/<its name>/jobs/`, `.../streams/` and
`.../shadow/`, may not publish where only the service does (Jobs replies and events, stream
answers, shadow answers and events), and may publish its telemetry; the jobs service may use
every thing's jobs, streams and shadow topics. As on
AWS IoT there are no retained messages and no QoS 2 (a retained or QoS 2 publish closes the
connection; a QoS 2 subscription is granted QoS 1).

It is enforced with mosquitto's dynamic-security plugin, which refuses a subscription outside
the allowed topics with SUBACK 0x80 (as AWS IoT does) and silently drops a denied publish. The
plugin in mosquitto 2.0 has no per-user pattern substitution, so each thing gets its own role;
things provisioned while the broker runs are added through the plugin's control topic by a
dedicated admin connection. The broker's access list is rebuilt from the thing list at every
start. If the plugin is not installed, an ACL file with `pattern readwrite $aws/things/%u/jobs/#`
(and `.../streams/#`, `.../shadow/#`) does the same except that denied subscriptions are granted (and receive
nothing) and that a thing may publish on its reply and event topics (an ACL file cannot deny
publishing without denying receiving).
There is no plain-text listener. The listener is on 127.0.0.1, or on every interface
(`bind="0.0.0.0"`) when devices on the network must reach it.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .jobs import SERVICE_CN

ADMIN_CN = "broker.admin"  # never a valid thing name (no dots in thing names)
# AWS IoT takes message payloads of up to 128 KB; the broker allows 176 KB packets so that the
# largest answer of the streams service fits: a 128 KB block in JSON (base64) with its topic.
MAX_PACKET = 176 * 1024
DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
PUB_SEND, PUB_RECV, SUB = "publishClientSend", "publishClientReceive", "subscribePattern"


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto; `make setup`)")


def dynsec_plugin() -> str | None:
    """Path of mosquitto's dynamic-security plugin, if installed."""
    for pattern in ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib/mosquitto_dynamic_security.so",
                    "/usr/local/lib/mosquitto_dynamic_security.so", "/usr/lib64/mosquitto_dynamic_security.so",
                    "/usr/local/lib/*/mosquitto_dynamic_security.so"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _set_pdeathsig() -> None:
    """In the child: die with the parent (Linux), so a killed daemon leaves no broker behind."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _acls(topic: str) -> list[dict[str, Any]]:
    return [{"acltype": t, "topic": topic, "priority": 0, "allow": True} for t in (PUB_SEND, PUB_RECV, SUB)]


# Topics under `$aws/things/<thing>/` on which only AWS IoT publishes (the reserved-topics
# table of the developer guide allows a client to subscribe to them, not to publish): Jobs
# replies and events, the answers of MQTT-based file delivery, and the Device Shadow service's
# answers and events (of the classic shadow and of named ones). A publish there by a device is
# refused, so that nobody can forge the service's messages.
SERVICE_ONLY = ("jobs/notify", "jobs/notify-next", "jobs/+/accepted", "jobs/+/rejected",
                "jobs/+/+/accepted", "jobs/+/+/rejected",
                "streams/+/data/+", "streams/+/description/+", "streams/+/rejected/+",
                "shadow/+/accepted", "shadow/+/rejected", "shadow/update/delta",
                "shadow/update/documents", "shadow/name/+/+/accepted", "shadow/name/+/+/rejected",
                "shadow/name/+/update/delta", "shadow/name/+/update/documents")


def _thing_role(thing: str) -> dict[str, Any]:
    """A thing's own topics, as the AWS IoT policy `fota provision` attaches
    (`fotatools.aws.device_policy`): its jobs, streams and shadow topics, except publishing
    where only the service publishes, and publishing its telemetry."""
    base = f"$aws/things/{thing}"
    deny = [{"acltype": PUB_SEND, "topic": f"{base}/{t}", "priority": 1, "allow": False} for t in SERVICE_ONLY]
    telemetry = {"acltype": PUB_SEND, "topic": f"things/{thing}/telemetry", "priority": 0, "allow": True}
    return {"rolename": f"thing:{thing}",
            "acls": deny + _acls(f"{base}/jobs/#") + _acls(f"{base}/streams/#") + _acls(f"{base}/shadow/#")
            + [telemetry]}


def dynsec_config(things: list[str]) -> dict[str, Any]:
    """The dynamic-security plugin's configuration for these things, the jobs service and the
    admin connection; everything not listed is denied."""
    roles = [{"rolename": "jobs-service",
              "acls": _acls("$aws/things/+/jobs/#") + _acls("$aws/things/+/streams/#")
              + _acls("$aws/things/+/shadow/#")},
             {"rolename": "broker-admin", "acls": _acls("$CONTROL/dynamic-security/#")}]
    clients = [{"username": SERVICE_CN, "roles": [{"rolename": "jobs-service"}]},
               {"username": ADMIN_CN, "roles": [{"rolename": "broker-admin"}]}]
    for t in things:
        roles.append(_thing_role(t))
        clients.append({"username": t, "roles": [{"rolename": f"thing:{t}"}]})
    return {"defaultACLAccess": {PUB_SEND: False, PUB_RECV: False, "subscribe": False, "unsubscribe": True},
            "clients": clients, "groups": [], "roles": roles}


class Broker:
    """mosquitto run as a child process from a config written into `folder`."""

    def __init__(self, folder: Path, ca_pem: Path, cert_pem: Path, key_pem: Path,
                 admin_cert: Path | None = None, admin_key: Path | None = None,
                 bind: str = "127.0.0.1", crl_pem: Path | None = None):
        self.folder = Path(folder)
        self.crl_pem = Path(crl_pem) if crl_pem else None  # revoked client certificates
        self.bind = bind
        self.ca_pem, self.cert_pem, self.key_pem = Path(ca_pem), Path(cert_pem), Path(key_pem)
        self.admin_cert, self.admin_key = admin_cert, admin_key
        self.conf_path = self.folder / "mosquitto.conf"
        self.acl_path = self.folder / "acl"
        self.dynsec_path = self.folder / "dynamic-security.json"
        self.pid_path = self.folder / "mosquitto.pid"
        self.log_path = self.folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.plugin = dynsec_plugin()
        self._admin: _Admin | None = None

    def write_config(self, port: int, things: list[str]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [
            "# written by fotatools.cloud.broker; rewritten at every start",
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",
            f"max_packet_size {MAX_PACKET}",
            "max_keepalive 1200",
            # AWS IoT refuses retained messages where the policy grants no iot:RetainPublish (the
            # device policy grants none) and on reserved topics: a retained publish closes the
            # connection.
            "retain_available false",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if self.plugin:
            self.dynsec_path.write_text(json.dumps(dynsec_config(things), indent=1))
            lines += [f"plugin {self.plugin}", f"plugin_opt_config_file {self.dynsec_path}"]
        else:
            self.acl_path.write_text(
                f"user {SERVICE_CN}\n"
                "topic readwrite $aws/things/+/jobs/#\n"
                "topic readwrite $aws/things/+/streams/#\n"
                "topic readwrite $aws/things/+/shadow/#\n\n"
                "pattern readwrite $aws/things/%u/jobs/#\n"
                "pattern readwrite $aws/things/%u/streams/#\n"
                "pattern readwrite $aws/things/%u/shadow/#\n"
                "pattern write things/%u/telemetry\n")
            lines.append(f"acl_file {self.acl_path}")
        lines += [
            "",
            f"listener {port} {self.bind}",
            "protocol mqtt",
            f"cafile {self.ca_pem}",
            f"certfile {self.cert_pem}",
            f"keyfile {self.key_pem}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            *([f"crlfile {self.crl_pem}"] if self.crl_pem else []),
            # The client id is the certificate's CN (the thing name), whatever the client sent:
            # a thing cannot take another thing's client id and so close its session. (mosquitto
            # skips authentication plugins, and so the dynamic-security `clientid` binding, when
            # the user name comes from the certificate.)
            "use_username_as_clientid true",
            # AWS IoT has no QoS 2: a subscription asking for it is granted QoS 1, a QoS 2
            # publish closes the connection.
            "max_qos 1",
        ]
        if os.geteuid() == 0:
            # mosquitto started as root switches to the "mosquitto" user, which could not read
            # the keys in the state folder: stay the user who runs it.
            lines.insert(1, f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        self.conf_path.write_text("\n".join(lines) + "\n")
        return self.conf_path

    def kill_stale(self) -> None:
        """Stop a mosquitto left running on this folder's config by a crashed run."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        if pid > 0 and _pid_alive(pid) and str(self.conf_path) in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    def _ready(self, timeout: float) -> bool:
        """True once the listener gets as far as the TLS handshake."""
        deadline = time.monotonic() + timeout
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    try:  # without a client certificate the broker refuses us: that is enough
                        with ctx.wrap_socket(s, server_hostname="localhost"):
                            pass
                    except (ssl.SSLError, OSError):
                        pass
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def start(self, things: list[str] | None = None, port: int | None = None, timeout: float = 10.0,
              attempts: int = 5) -> int:
        """Start mosquitto on `port` (a free one if None, or if `port` turns out to be taken)
        letting `things` in; return the port."""
        binary = mosquitto_binary()
        self.kill_stale()
        last = ""
        for _ in range(attempts):
            self.port = port or free_port()
            self.write_config(self.port, list(things or []))
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen([binary, "-c", str(self.conf_path)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, preexec_fn=_set_pdeathsig)
            finally:
                log.close()
            # mosquitto writes pid_file only when it daemonises: record the child ourselves
            self.pid_path.write_text(f"{self.proc.pid}\n")
            if self._ready(timeout):
                if self.plugin and self.admin_cert and self.admin_key:
                    self._admin = _Admin(self.port, self.ca_pem, self.admin_cert, self.admin_key)
                return self.port
            self.stop()
            last = self.log_path.read_text(errors="replace")[-2000:]
            port = None  # taken meanwhile: any free one
        raise BrokerError(f"mosquitto did not start; its log ends with:\n{last}")

    def allow_thing(self, thing: str) -> None:
        """Let a (new) thing use its own topics from now on."""
        if self._admin is not None:
            self._admin.allow(thing)

    def reload_crl(self, probe_cert: Path, probe_key: Path, timeout: float = 10.0) -> None:
        """Make the running broker read its revocation list again (SIGHUP: mosquitto reloads its
        configuration and TLS settings, CRL included; connected clients stay). Returns once a
        TLS handshake with `probe_cert`, a certificate revoked only in the new list, is refused,
        so that a caller can rely on the new list from then on."""
        if self.proc is None or self.proc.poll() is not None:
            return  # not running: the list is read at the next start
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        ctx.load_cert_chain(str(probe_cert), str(probe_key))
        # TLS 1.2: the server's verdict on the client certificate is part of the handshake
        # (with 1.3 it would come only after it)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    with ctx.wrap_socket(s, server_hostname="localhost"):
                        pass
            except ssl.SSLError as e:
                if "REVOKED" in (e.reason or ""):
                    return  # the probe certificate is refused: the new list is in force
            except OSError:
                pass
            time.sleep(0.05)
        raise BrokerError("the broker did not take up its new certificate revocation list")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 5.0) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None
        self.pid_path.unlink(missing_ok=True)


class _Admin:
    """A connection that edits the dynamic-security configuration of the running broker."""

    def __init__(self, port: int, ca_pem: Path, cert: Path, key: Path):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ADMIN_CN, protocol=mqtt.MQTTv311)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_pem))
        ctx.load_cert_chain(str(cert), str(key))
        self.client.tls_set_context(ctx)
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.responses: dict[str, dict[str, Any]] = {}
        self.ready = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("localhost", port, keepalive=60)
        self.client.loop_start()
        if not self.ready.wait(10):
            self.close()
            raise BrokerError("could not open the broker's admin connection")

    @staticmethod
    def _on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        sock = client.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(f"{DYNSEC_TOPIC}/response", 1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.cond:
            for r in body.get("responses", []):
                if "correlationData" in r:
                    self.responses[r["correlationData"]] = r
            self.cond.notify_all()

    def _run(self, commands: list[dict[str, Any]], ok_errors: tuple[str, ...] = ()) -> None:
        ids = []
        for c in commands:
            c["correlationData"] = uuid.uuid4().hex
            ids.append(c["correlationData"])
        with self.lock:
            self.client.publish(DYNSEC_TOPIC, json.dumps({"commands": commands}), qos=1)
            with self.cond:
                if not self.cond.wait_for(lambda: all(i in self.responses for i in ids), 10):
                    raise BrokerError("the broker did not answer an access-control change")
                for i in ids:
                    err = self.responses.pop(i).get("error")
                    if err and not any(e in err for e in ok_errors):
                        raise BrokerError(f"the broker refused an access-control change: {err}")

    def allow(self, thing: str) -> None:
        role = _thing_role(thing)
        self._run([{"command": "createRole", **role},
                   {"command": "createClient", "username": thing, "roles": [{"rolename": role["rolename"]}]}],
                  ok_errors=("already exists",))

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
