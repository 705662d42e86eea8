"""The Device Shadow service of the AWS IoT stand-in: classic (unnamed) and named shadows.

MQTT, as the AWS IoT developer guide documents it ("Device Shadow MQTT topics", "Device Shadow
service documents", "Device Shadow error messages"): a thing publishes on
`$aws/things/<thing>/shadow/update` (or `.../shadow/name/<name>/update`) a request state
document `{"state": {"desired": {...}, "reported": {...}}, "clientToken": "...", "version": n}`;
the service merges it into the shadow (a null value deletes that field; objects merge, every
other value, arrays included, replaces) and answers on `update/accepted` with the fields of the
request, their metadata (a timestamp per field), the new version and the time, or on
`update/rejected` with `{"code": <HTTP status>, "message": ..., "timestamp": ..., "clientToken":
...}`. An accepted update is followed by `update/documents` (the previous and the current
document) and, when the request set desired state that the reported state does not match yet,
`update/delta`. `get` answers on `get/accepted` with the whole document (desired, reported,
delta, metadata, version, timestamp) or `get/rejected` (404 when there is no shadow); `delete`
on `delete/accepted` / `delete/rejected`. The version starts at 1 and grows by one at every
accepted update; it carries on after a delete, as AWS keeps it.

Limits that AWS states and this service enforces: the desired and reported state together at
most 8 KB (8192 bytes of JSON; metadata does not count), at most 6 levels of nesting inside
desired or reported, a clientToken of at most 64 bytes, UTF-8 JSON.

Who may use which shadow is the broker's access list (`broker.py`): a thing only its own.
`ShadowEngine.get_thing_shadow` is the host's read (GetThingShadow of the IoT data plane),
served by the control API.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Callable

from .db import Database

log = logging.getLogger("fotatools.cloud.shadow")

MAX_STATE = 8192  # bytes of desired + reported state, as JSON
MAX_DEPTH = 6  # levels of nesting inside desired or reported
MAX_CLIENT_TOKEN = 64  # bytes
SHADOW_NAME_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,64}$")
THING_RE = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
CLASSIC = ""  # the shadow name of a thing's classic shadow


class ShadowRejected(Exception):
    """A request the service refuses: its HTTP status code and AWS's message."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# -- the state document -------------------------------------------------------------------------
def _depth(v: Any) -> int:
    """Levels of nesting below a section: a plain value is 0, {"a": 1} is 1."""
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def _meta(v: Any, t: int) -> Any:
    """The metadata of a value: a timestamp per leaf, the same shape as the value."""
    if isinstance(v, dict):
        return {k: _meta(x, t) for k, x in v.items()}
    if isinstance(v, list):
        return [_meta(x, t) for x in v]
    return {"timestamp": t}


def _merge(old: dict[str, Any], meta: dict[str, Any], new: dict[str, Any], t: int) -> None:
    """Merge `new` into `old` (and its metadata into `meta`) in place: null deletes, objects
    merge, anything else replaces."""
    for k, v in new.items():
        if v is None:
            old.pop(k, None)
            meta.pop(k, None)
        elif isinstance(v, dict) and isinstance(old.get(k), dict):
            # the metadata of an object is an object of the same keys: a key called
            # "timestamp" in it is the timestamp of that member, not of the object
            m = meta.get(k)
            if not isinstance(m, dict):
                m = meta[k] = {}
            _merge(old[k], m, v, t)
        elif isinstance(v, dict):
            old[k] = {}
            meta[k] = {}
            _merge(old[k], meta[k], v, t)
        else:
            old[k] = v
            meta[k] = _meta(v, t)


def _delta(desired: Any, reported: Any) -> Any:
    """What of `desired` `reported` does not match (None: nothing). Objects are compared field
    by field; any other value (arrays included) as a whole."""
    if isinstance(desired, dict):
        rep = reported if isinstance(reported, dict) else {}
        out = {}
        for k, v in desired.items():
            d = _delta(v, rep.get(k)) if k in rep else v
            if d is not None:
                out[k] = d
        return out or None
    return None if desired == reported else desired


def _delta_meta(delta: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in delta.items():
        m = meta.get(k, {})
        out[k] = _delta_meta(v, m) if isinstance(v, dict) and isinstance(m, dict) else m
    return out


def _compact(v: Any) -> bytes:
    return json.dumps(v, separators=(",", ":")).encode()


class ShadowEngine:
    """The shadows, kept in the stand-in's database; `publish(topic, payload)` sends answers."""

    def __init__(self, db: Database, publish: Callable[[str, bytes], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.db = db
        self.publish = publish or (lambda topic, payload: None)
        self.clock = clock
        self.lock = db.lock

    # -- storage ----------------------------------------------------------------------------
    def _load(self, thing: str, name: str) -> tuple[dict[str, Any] | None, int]:
        """(document {"state", "metadata"} or None when there is no shadow, last version)."""
        row = self.db.get_shadow(thing, name)
        if row is None:
            return None, 0
        doc = json.loads(row["document"]) if row["document"] is not None else None
        return doc, int(row["version"])

    # -- MQTT -------------------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> None:
        """Answer one request a thing published on its shadow topics."""
        parts = topic.split("/")
        if len(parts) < 5 or parts[:2] != ["$aws", "things"] or parts[3] != "shadow":
            return
        thing, rest = parts[2], parts[4:]
        named = len(rest) >= 2 and rest[0] == "name"
        name, rest = (rest[1], rest[2:]) if named else (CLASSIC, rest)
        if rest not in (["update"], ["get"], ["delete"]):
            return  # answers and events (published here) or no shadow operation
        # a named shadow's name is never empty: .../shadow/name//update is not the classic shadow
        if not THING_RE.match(thing) or (named and not SHADOW_NAME_RE.match(name)):
            return
        out: list[tuple[str, bytes]] = []
        with self.lock:
            try:
                out = self.request(thing, name, rest[0], payload)
            except Exception:  # never leave a thing without an answer
                log.exception("internal error on %s", topic)
                out = [(f"{topic}/rejected", _compact(
                    {"code": 500, "message": "Internal service failure", "timestamp": int(self.clock())}))]
        for t, p in out:
            try:
                self.publish(t, p)
            except Exception:
                log.exception("publish to %s failed", t)

    def request(self, thing: str, name: str, op: str, payload: bytes) -> list[tuple[str, bytes]]:
        """One request (op update, get or delete) -> the messages to publish, in order."""
        prefix = f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")
        now = int(self.clock())
        token: str | None = None
        try:
            req = self._parse(payload, op)
            token = req.get("clientToken")
            if op == "update":
                return [(f"{prefix}/update/{topic}", _compact(body))
                        for topic, body in self._update(thing, name, req, now, token)]
            body = self._get(thing, name, now) if op == "get" else self._delete(thing, name, now)
            if token is not None:
                body["clientToken"] = token
            return [(f"{prefix}/{op}/accepted", _compact(body))]
        except ShadowRejected as r:
            err: dict[str, Any] = {"code": r.code, "message": r.message, "timestamp": now}
            if token is not None:
                err["clientToken"] = token
            return [(f"{prefix}/{op}/rejected", _compact(err))]

    @staticmethod
    def _parse(payload: bytes, op: str) -> dict[str, Any]:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ShadowRejected(415, "Unsupported documented encoding; supported encoding is UTF-8") from None
        if not text.strip() and op != "update":
            return {}  # get and delete take an empty message
        try:
            req = json.loads(text)
        except ValueError:
            raise ShadowRejected(400, "Invalid JSON") from None
        if not isinstance(req, dict):
            raise ShadowRejected(400, "Invalid JSON")
        if "clientToken" in req:
            t = req["clientToken"]
            if not isinstance(t, str) or not t or len(t.encode()) > MAX_CLIENT_TOKEN:
                raise ShadowRejected(400, "Invalid clientToken")
        return req

    def _update(self, thing: str, name: str, req: dict[str, Any], now: int,
                token: str | None) -> list[tuple[str, dict[str, Any]]]:
        if "state" not in req:
            raise ShadowRejected(400, "Missing required node: state")
        state = req["state"]
        if state is not None and not isinstance(state, dict):
            raise ShadowRejected(400, "State node must be an object")
        state = {"desired": None, "reported": None} if state is None else state
        for k, v in state.items():
            if k not in ("desired", "reported"):
                raise ShadowRejected(400, "State contains an invalid node")
            if v is not None and not isinstance(v, dict):
                raise ShadowRejected(400, f"{k.capitalize()} node must be an object")
            if v is not None and _depth(v) > MAX_DEPTH:
                raise ShadowRejected(400, f"JSON contains too many levels of nesting; maximum is {MAX_DEPTH}")
        version = req.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)
                                    or version < 0):
            raise ShadowRejected(400, "Invalid version")
        with self.db.transaction():
            doc, last = self._load(thing, name)
            current = last if doc is not None else 0
            if version is not None and version != current:
                raise ShadowRejected(409, "Version conflict")
            before = json.loads(json.dumps(doc)) if doc is not None else None
            doc = doc or {"state": {}, "metadata": {}}
            for section, v in state.items():
                if v is None:
                    doc["state"].pop(section, None)
                    doc["metadata"].pop(section, None)
                    continue
                _merge(doc["state"].setdefault(section, {}), doc["metadata"].setdefault(section, {}), v, now)
            for section in ("desired", "reported"):
                if section in doc["state"] and not doc["state"][section]:
                    del doc["state"][section]
                    doc["metadata"].pop(section, None)
            if len(_compact(doc["state"])) > MAX_STATE:
                raise ShadowRejected(413, "The payload exceeds the maximum size allowed")
            new_version = last + 1
            self.db.put_shadow(thing, name, json.dumps(doc), new_version, now)
        accepted: dict[str, Any] = {"state": state, "metadata": {
            k: (_meta(v, now) if v is not None else None) for k, v in state.items()},
            "version": new_version, "timestamp": now}
        if token is not None:
            accepted["clientToken"] = token
        out: list[tuple[str, dict[str, Any]]] = [("accepted", accepted)]
        previous = self._full(before, last) if before is not None else None
        documents: dict[str, Any] = {"previous": previous, "current": self._full(doc, new_version),
                                     "timestamp": now}
        if token is not None:
            documents["clientToken"] = token
        out.append(("documents", documents))
        delta = _delta(doc["state"].get("desired", {}), doc["state"].get("reported", {}))
        if state.get("desired") and delta:
            body: dict[str, Any] = {"version": new_version, "timestamp": now, "state": delta,
                                    "metadata": _delta_meta(delta, doc["metadata"].get("desired", {}))}
            if token is not None:
                body["clientToken"] = token
            out.append(("delta", body))
        return out

    @staticmethod
    def _full(doc: dict[str, Any], version: int) -> dict[str, Any]:
        """A document as update/documents carries it: state (desired, reported), metadata,
        version."""
        return {"state": doc["state"], "metadata": doc["metadata"], "version": version}

    def _get(self, thing: str, name: str, now: int) -> dict[str, Any]:
        doc, version = self._load(thing, name)
        if doc is None:
            raise ShadowRejected(404, f"No shadow exists with name: '{name or thing}'")
        state = dict(doc["state"])
        delta = _delta(state.get("desired", {}), state.get("reported", {}))
        if delta:
            state["delta"] = delta
        return {"state": state, "metadata": doc["metadata"], "version": version, "timestamp": now}

    def _delete(self, thing: str, name: str, now: int) -> dict[str, Any]:
        with self.db.transaction():
            doc, version = self._load(thing, name)
            if doc is None:
                raise ShadowRejected(404, f"No shadow exists with name: '{name or thing}'")
            self.db.put_shadow(thing, name, None, version, now)
        return {"version": version, "timestamp": now}

    # -- the host's read (the IoT data plane's GetThingShadow) ------------------------------
    def get_thing_shadow(self, thing: str, name: str = CLASSIC) -> dict[str, Any] | None:
        """The shadow document as GetThingShadow returns it, or None if there is none."""
        with self.lock:
            try:
                return self._get(thing, name, int(self.clock()))
            except ShadowRejected:
                return None

    def update_thing_shadow(self, thing: str, payload: bytes, name: str = CLASSIC) -> dict[str, Any]:
        """UpdateThingShadow: the accepted document; ShadowRejected as the MQTT API refuses."""
        with self.lock:
            req = self._parse(payload, "update")
            out = self._update(thing, name, req, int(self.clock()), req.get("clientToken"))
        prefix = f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")
        for topic, body in out:  # accepted, documents, delta: as after an update over MQTT
            try:
                self.publish(f"{prefix}/update/{topic}", _compact(body))
            except Exception:
                log.exception("publish of update/%s failed", topic)
        return out[0][1]
