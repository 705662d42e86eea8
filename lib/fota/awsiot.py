# The device's connection to AWS IoT: MQTT 3.1.1 over TLS with its own certificate.
#
# config.json (written by `fota provision`):
#   {"thing": "dev-1", "endpoint": "xxxx-ats.iot.eu-west-1.amazonaws.com", "port": 8883,
#    "cert": "certs/device.crt.der", "key": "certs/device.key.der", "ca": "certs/ca.der",
#    "ntp": ["time.aws.com", "time.cloudflare.com", "pool.ntp.org"]}
# Every connect() first sets the board's clock (clock.py: the firmware's build time as a
# floor, then the time sources of "ntp"), since TLS checks the certificates' dates against it;
# a refusal over those dates moves the clock (clock.hint) and is tried again at once, a few
# times at most; a handshake that gets through confirms a time on trial (clock.tls_ok).
# Keys and certificates are DER: MicroPython's mbedTLS binding does not parse PEM.
# The client id is the thing name, as AWS IoT policies with iot:Connection.Thing.ThingName
# require. Works with both umqtt.simple releases: the one frozen into ESP32 firmware
# (ssl=SSLContext) and the older one on PyPI (ssl=True, imports ussl inside connect()).

import json
import select
import sys
import time

from fota import clock
from fota.https import nodelay, tls_context

CONFIG = "config.json"
READ_S = 30  # the longest a read of the session blocks: the TLS handshake, CONNACK, SUBACK, and
#              the rest of a message once its first byte has come
CLOCK_TRIES = 4  # handshakes per connect(): the times on trial, then the floor


def load_config(path=CONFIG):
    with open(path) as f:
        cfg = json.load(f)
    for k in ("thing", "endpoint", "cert", "key", "ca"):
        if not isinstance(cfg.get(k), str) or not cfg[k]:
            raise ValueError("%s: %r missing" % (path, k))
    cfg.setdefault("port", 8883)
    return cfg


def read(path):
    with open(path, "rb") as f:
        return f.read()


class _TLS:
    # What umqtt.simple wraps its socket with: the verifying context, for the endpoint's name,
    # on a socket that sends each MQTT packet at once (https.nodelay). The frozen umqtt.simple
    # calls ssl.wrap_socket(sock, server_hostname=...); the PyPI one imports `ussl` (gone in
    # MicroPython 1.23+) and calls ussl.wrap_socket(sock, **ssl_params): this serves both.
    def __init__(self, ctx, host, timeout_s):
        self.ctx = ctx
        self.host = host
        self.timeout_s = timeout_s

    def wrap_socket(self, sock, **_):
        nodelay(sock)
        sock.settimeout(self.timeout_s)  # the handshake, CONNACK, SUBACK
        return _Sock(self.ctx.wrap_socket(sock, server_hostname=self.host), sock, self.timeout_s)


class _Sock:
    # The TLS socket as umqtt.simple uses it, but "blocking" blocks timeout_s at most:
    # umqtt.simple makes its socket blocking for good in the middle of each message (wait_msg),
    # and a broker or a network that stops there would hold the board until its watchdog
    # resets it. A read that times out raises OSError (ETIMEDOUT): the loop connects again.
    def __init__(self, tls, raw, timeout_s):
        self.tls = tls  # what select.poll watches
        self.raw = raw
        self.timeout_s = timeout_s

    def read(self, n):
        return self.tls.read(n)

    def write(self, *args):
        return self.tls.write(*args)

    def setblocking(self, flag):
        self.raw.settimeout(self.timeout_s if flag else 0)

    def close(self):
        self.tls.close()


class Connection:
    # An MQTT session that can be closed (to free its TLS buffers) and opened again. feed():
    # the watchdog, fed while the clock asks its sources.
    def __init__(self, cfg, keepalive=60, feed=None, read_s=READ_S):
        self.cfg = cfg
        self.feed = feed
        self.thing = cfg["thing"]
        self.keepalive = keepalive
        self.read_s = read_s
        self.ca = read(cfg["ca"])
        self.ctx = None
        self.client = None
        self.subs = []  # topics to subscribe again after a reconnect
        self.handlers = []  # (topic prefix, fn(topic, msg)): who gets which messages
        self.got = False
        self.sent = 0  # ticks_ms of the last packet sent (for the keep-alive)

    def connect(self):
        tries = CLOCK_TRIES
        while True:
            clock.ready(self.cfg.get("ntp", clock.DEFAULT), self.feed)
            try:
                self._connect()
            except Exception as e:
                tries -= 1
                if not clock.hint(e) or not tries:
                    raise
                if self.feed:
                    self.feed()
                continue
            clock.tls_ok()
            return

    def _connect(self):
        from umqtt.simple import MQTTClient

        if self.ctx is None:
            self.ctx = tls_context(self.ca, read(self.cfg["cert"]), read(self.cfg["key"]))
        tls = _TLS(self.ctx, self.cfg["endpoint"], self.read_s)
        c = MQTTClient(self.thing, self.cfg["endpoint"], port=self.cfg["port"],
                       keepalive=self.keepalive, ssl=tls)
        c.set_callback(self._on_msg)
        old = sys.modules.get("ussl")  # the PyPI umqtt.simple imports it in connect(): ours,
        sys.modules["ussl"] = tls  # never a module of that name an application carries
        try:
            c.connect()
            for t in self.subs:
                c.subscribe(t)
        except Exception:
            if c.sock:
                c.sock.close()  # a board has few sockets: a failed attempt must not keep one
            raise
        finally:
            if old is None:
                sys.modules.pop("ussl")
            else:
                sys.modules["ussl"] = old
        self.client = c
        self.sent = time.ticks_ms()

    def connected(self):
        return self.client is not None

    def close(self):
        c, self.client = self.client, None
        if c:
            try:
                c.disconnect()
            except Exception:
                c.sock.close()

    def on(self, prefix, fn):
        # Deliver messages whose topic starts with prefix (str) to fn(topic, msg); a new
        # handler for the same prefix replaces the old one.
        self.handlers = [h for h in self.handlers if h[0] != prefix] + [(prefix, fn)]

    def subscribe(self, topic):
        if topic not in self.subs:
            self.subs.append(topic)
        if self.client:
            self.client.subscribe(topic)

    def publish(self, topic, msg, qos=0):
        # QoS 1 waits (read_s at most) for the broker's PUBACK, handling what comes meanwhile.
        self.client.publish(topic, msg, qos=qos)
        self.sent = time.ticks_ms()

    def wait(self, ms, one=False):
        # Block until the broker sends something or ms pass; then handle what came (or only
        # the first message, with one=True: the rest stays in the connection until asked for).
        # A quiet session is kept alive with a ping every half keep-alive.
        if time.ticks_diff(time.ticks_ms(), self.sent) > self.keepalive * 500:
            self.ping()
        poll = select.poll()
        poll.register(self.client.sock.tls, select.POLLIN)
        poll.poll(ms)
        if one:
            self.client.check_msg()
        else:
            self.check()

    def check(self):
        # Handle what the broker has sent, without blocking; returns when nothing is left.
        while True:
            self.got = False
            if self.client.check_msg() is None and not self.got:
                return

    def ping(self):
        self.client.ping()
        self.sent = time.ticks_ms()

    def _on_msg(self, topic, msg):
        self.got = True
        topic = topic.decode() if isinstance(topic, bytes) else topic
        for prefix, fn in self.handlers:
            if topic.startswith(prefix):
                fn(topic, msg)
