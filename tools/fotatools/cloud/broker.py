"""The MQTT broker of the AWS IoT stand-in: mosquitto with TLS client certificates and an ACL.

Only clients with a certificate from the local CA may connect; the certificate's CN becomes the
user name, and the ACL lets a thing use only `$aws/things/<its name>/#` (what a typical AWS IoT
policy with `${iot:Connection.Thing.ThingName}` allows). The jobs service (CN `jobs.service`)
may use every thing's jobs topics. There is no plain-text listener.

mosquitto 2.0 silently drops a publish the ACL denies and answers a denied subscription with
SUBACK code 0x80.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from .jobs import SERVICE_CN

MAX_PACKET = 128 * 1024 + 4096  # AWS IoT: a message payload may be 128 KB


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


class Broker:
    """mosquitto run as a child process from a config written into `folder`."""

    def __init__(self, folder: Path, ca_pem: Path, cert_pem: Path, key_pem: Path):
        self.folder = Path(folder)
        self.ca_pem, self.cert_pem, self.key_pem = Path(ca_pem), Path(cert_pem), Path(key_pem)
        self.conf_path = self.folder / "mosquitto.conf"
        self.acl_path = self.folder / "acl"
        self.pid_path = self.folder / "mosquitto.pid"
        self.log_path = self.folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def write_config(self, port: int) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.acl_path.write_text(
            "# The jobs service answers on every thing's jobs topics.\n"
            f"user {SERVICE_CN}\n"
            "topic readwrite $aws/things/+/jobs/#\n"
            "\n"
            "# A thing (certificate CN = thing name) may use only its own topics.\n"
            "pattern readwrite $aws/things/%u/#\n")
        lines = [
            "# written by fotatools.cloud.broker; rewritten at every start",
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {self.acl_path}",
            "persistence false",
            f"max_packet_size {MAX_PACKET}",
            "max_keepalive 1200",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "",
            f"listener {port} 127.0.0.1",
            "protocol mqtt",
            f"cafile {self.ca_pem}",
            f"certfile {self.cert_pem}",
            f"keyfile {self.key_pem}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
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
        """True once the listener accepts a TLS handshake from a client."""
        deadline = time.monotonic() + timeout
        ctx = ssl.create_default_context(cafile=str(self.ca_pem))
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    # Without a client certificate the broker refuses us: reaching the TLS layer
                    # at all is what counts.
                    try:
                        with ctx.wrap_socket(s, server_hostname="localhost"):
                            pass
                    except (ssl.SSLError, OSError):
                        pass
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def start(self, port: int | None = None, timeout: float = 10.0, attempts: int = 5) -> int:
        """Start mosquitto on `port` (a free one if None); return the port."""
        binary = mosquitto_binary()
        self.kill_stale()
        last = ""
        for _ in range(attempts):
            self.port = port or free_port()
            self.write_config(self.port)
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen([binary, "-c", str(self.conf_path)], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=log, preexec_fn=_set_pdeathsig)
            finally:
                log.close()
            # mosquitto writes pid_file only when it daemonises: record the child ourselves
            self.pid_path.write_text(f"{self.proc.pid}\n")
            if self._ready(timeout):
                return self.port
            self.stop()
            last = self.log_path.read_text(errors="replace")[-2000:]
            if port:
                break
        raise BrokerError(f"mosquitto did not start; its log ends with:\n{last}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 5.0) -> None:
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
