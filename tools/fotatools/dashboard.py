"""`fota dashboard`: a read-only web page that follows the fleet and its rollouts.

One thread (`Watcher`) reads the control plane every few seconds through the same `Backend` as
the CLI (the local stand-in or AWS) and keeps what it saw in memory: the newest `max_jobs` jobs,
picked from ListJobs' summaries (only those are described, a call or more each; one that has
ended and whose targets no longer move is not read again), each counted over all the things it
targets (`progress.Progress`: WAITING and SPARED things included), how each job's counts moved
since the page's server started (the rollout chart), what each thing runs (its device shadow,
`fleet.from_shadow`) and its last job with its status, step and reason (its newest execution
among those jobs, else the last job its shadow reports). The HTTP server only hands out that
state: a page (`dashboard.html`: one file, a little JavaScript, an SVG chart) and
`GET /api/state` (JSON), which the page polls. Nothing on it changes the fleet: every other
method is refused.

Access: bound to a loopback address, the page is open to this machine's users (requests whose
Host header names another site are refused, so a web page cannot reach it through a DNS name
that resolves to 127.0.0.1); bound to any other address, every request must carry a token:
`?token=T` once (the answer sets a cookie and sends the browser on to the page without it), or
the cookie, or `Authorization: Bearer T`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import fleet
from .backend import Backend, BackendError, Execution, NotFound
from .progress import EXIT_IN_PROGRESS, SPARED, WAITING, Progress

DEFAULT_PORT = 8765
DEFAULT_INTERVAL = 2.0
MAX_JOBS = 20  # jobs on the page, newest first
MAX_POINTS = 2000  # changes of a job's counts kept for its chart (the oldest go first)
SHADOW_READS = 100  # device shadows read at most each time (the rest at the next ones)
AGAIN = 3  # times a thing's shadow is read again after its job moved

# The chart's series, bottom to top, and the states each one counts.
SERIES = ("succeeded", "in_progress", "failed", "waiting", "spared")
SERIES_OF = {"SUCCEEDED": "succeeded", "IN_PROGRESS": "in_progress",
             "QUEUED": "waiting", WAITING: "waiting",
             "FAILED": "failed", "REJECTED": "failed", "TIMED_OUT": "failed",
             "REMOVED": "failed", "CANCELED": "failed", SPARED: "spared"}

# statusDetails the page shows in columns of their own; the rest go under "details"
STEP, REASON = "step", "reason"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def series_counts(progress: Progress) -> dict[str, int]:
    """The job's targets in the chart's series (a state this version does not know: failed)."""
    out = dict.fromkeys(SERIES, 0)
    for t in progress.targets:
        out[SERIES_OF.get(t.state, "failed")] += 1
    return out


@dataclass
class JobView:
    """What the page knows of one job: its last reading and how its counts moved."""

    job_id: str
    created_at: float | None = None
    report: dict[str, Any] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    points: list[list[float]] = field(default_factory=list)  # [t, one count per SERIES]
    settled: bool = False  # ended, and no target will move any more: read no more

    def record(self, now: float, counts: dict[str, int]) -> None:
        values = [counts[s] for s in SERIES]
        if self.points and self.points[-1][1:] == values:
            return
        self.points.append([round(now, 3), *values])
        del self.points[:-MAX_POINTS]


class Watcher:
    """Reads the control plane every `interval` seconds (in `run`) and keeps the page's state."""

    def __init__(self, backend: Backend, interval: float = DEFAULT_INTERVAL,
                 max_jobs: int = MAX_JOBS, clock: Callable[[], float] = time.time):
        self.backend = backend
        self.interval = interval
        self.max_jobs = max_jobs
        self.clock = clock
        self.started = clock()
        self.jobs: dict[str, JobView] = {}
        self.lock = threading.Lock()  # guards `state`
        self._sampling = threading.Lock()  # one reading at a time
        self.state: dict[str, Any] = {}
        self.error: str | None = None
        self.shadows: dict[str, fleet.ThingState] = {}  # what each thing's shadow said
        self._read: dict[str, float] = {}  # when each thing's shadow was read
        self._again: dict[str, int] = {}  # thing -> reads still due since its job moved
        self._seen: dict[str, tuple[str, str, int]] = {}  # thing -> its newest execution
        self.shadow_error: str | None = None  # why the last reading of shadows failed

    # -- reading ------------------------------------------------------------------------------
    def _read_job(self, view: JobView) -> None:
        job = self.backend.describe_job(view.job_id)
        executions = sorted(self.backend.list_executions(view.job_id),
                            key=lambda e: e.thing_name)
        progress = Progress.of(job, executions, self.backend.target_things(job))
        now = self.clock()
        counts = series_counts(progress)
        view.record(now, counts)
        view.created_at = job.created_at
        view.executions = executions
        view.settled = progress.code != EXIT_IN_PROGRESS and job.status != "IN_PROGRESS"
        view.report = {
            "job_id": job.job_id, "status": job.status, "reason_code": job.reason_code,
            "created_at": iso(job.created_at), "created_at_epoch": job.created_at,
            "version": job.document.get("version"), "settled": view.settled,
            "target": "files" if "afr_ota" in job.document else
                      job.document.get("target", "firmware"),
            "total": len(progress.targets), "series": counts, "counts": progress.counts,
            "summary": progress.summary(), "result": progress.result,
            "targets": [self._target_row(t.thing, t.state, t.note, t.execution)
                        for t in progress.targets],
        }

    @staticmethod
    def _target_row(thing: str, state: str, note: str, e: Execution | None) -> dict[str, Any]:
        details = dict(e.status_details) if e else {}
        return {"thing": thing, "state": state, "note": note,
                "step": details.pop(STEP, None), "reason": details.pop(REASON, None),
                "details": details, "updated": iso(e.last_updated_at) if e else None,
                "updated_epoch": e.last_updated_at if e else None}

    def sample(self) -> None:
        """One reading of the control plane; a failure keeps the last good state and says why."""
        with self._sampling:
            self._sample()

    def _sample(self) -> None:
        try:
            # the jobs on the page, listed without a call per job: only these are described
            newest = self.backend.listed_jobs()[: self.max_jobs]
            for job_id in set(self.jobs) - {j.job_id for j in newest}:
                del self.jobs[job_id]  # deleted, or no longer among the newest
            for listed in newest:
                view = self.jobs.setdefault(listed.job_id,
                                            JobView(listed.job_id, listed.created_at))
                if not view.settled:
                    try:
                        self._read_job(view)
                    except NotFound:  # deleted since it was listed
                        self.jobs.pop(view.job_id, None)
            fleet_state = self._fleet(self.backend.names("thing"))
        except BackendError as e:
            with self.lock:
                self.error = str(e)
                self.state = {**self.state, "error": self.error}
            return
        now = self.clock()
        shown = sorted(self.jobs.values(), key=lambda v: (v.created_at or 0, v.job_id),
                       reverse=True)[: self.max_jobs]
        state = {
            "backend": self.backend.name,
            "read_at": iso(now), "read_at_epoch": now, "started_at_epoch": self.started,
            "interval": self.interval, "error": None, "shadow_error": self.shadow_error,
            "fleet": fleet_state,
            "jobs": [{**v.report, "points": v.points} for v in shown if v.report],
        }
        with self.lock:
            self.error, self.state = None, state

    def _shadows(self, things: list[str], last: dict[str, Execution]) -> None:
        """Read the shadows of at most SHADOW_READS things: those never read first, then those
        whose job moved lately (a board reports its shadow after each job it ends, a moment
        after the job's own update), then the longest unread."""
        moved = {t for t, e in last.items() if t in self._read
                 and self._seen.get(t) != (e.job_id, e.status, e.version_number)}
        self._seen = {t: (e.job_id, e.status, e.version_number) for t, e in last.items()}
        for t in moved:
            self._again[t] = AGAIN
        for t in set(self.shadows) - set(things):  # deleted
            self.shadows.pop(t, None)
            self._read.pop(t, None)
        order = sorted(things, key=lambda t: (t in self._read, not self._again.get(t),
                                              self._read.get(t, 0.0), t))
        try:
            for t in order[:SHADOW_READS]:
                self.shadows[t] = fleet.from_shadow(t, self.backend.thing_shadow(t))
                self._read[t] = self.clock()
                if self._again.get(t):
                    self._again[t] -= 1
        except BackendError as e:  # the jobs go on without (e.g. no right to read shadows)
            self.shadow_error = str(e)
        else:
            self.shadow_error = None

    def _fleet(self, things: list[str]) -> dict[str, Any]:
        """Each thing with what its shadow says it runs, and its last job: the newest execution
        of the jobs read (live: queued, in progress, its step), else the last job its shadow
        reports; and the things counted by version."""
        last: dict[str, Execution] = {}
        for view in self.jobs.values():
            for e in view.executions:
                when = (e.last_updated_at or e.queued_at or 0.0, e.execution_number)
                had = last.get(e.thing_name)
                if had is None or when >= (had.last_updated_at or had.queued_at or 0.0,
                                           had.execution_number):
                    last[e.thing_name] = e
        self._shadows(things, last)
        rows = []
        for thing in sorted(set(things) | set(last)):
            e = last.get(thing)
            shadow = self.shadows.get(thing) or fleet.ThingState(thing)
            if e is not None:
                row = self._target_row(thing, e.status, "", e)
                row["job"] = e.job_id
            else:
                row = {"thing": thing, "state": shadow.job_status or "", "note": "",
                       "step": shadow.step, "reason": shadow.reason, "details": {},
                       "job": shadow.job_id, "updated": None, "updated_epoch": None}
            row.update(firmware=shadow.firmware, application=shadow.application,
                       files=shadow.files, reported=iso(shadow.reported_at),
                       reported_epoch=shadow.reported_at)
            rows.append(row)
        return {"things": rows, "firmware": _tally(rows, "firmware"),
                "application": _tally(rows, "application")}

    def run(self, stop: threading.Event) -> None:
        while True:
            self.sample()
            if stop.wait(self.interval):
                return

    def json(self) -> bytes:
        with self.lock:
            return json.dumps(self.state).encode()


def _tally(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Things by version, the most common first; things whose version is not known last."""
    counts: dict[str | None, int] = {}
    for r in rows:
        counts[r[key]] = counts.get(r[key], 0) + 1
    order = sorted(counts, key=lambda v: (v is None, -counts[v], v or ""))
    return [{"version": v, "things": counts[v]} for v in order]


# -- HTTP --------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_html() -> str:
    return resources.files(__package__).joinpath("dashboard.html").read_text(encoding="utf-8")


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, watcher: Watcher, host: str, port: int, token: str | None):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.watcher = watcher
        self.token = token
        self.host = host
        self.page = page_html()
        self.cookie = f"fota_dashboard_{self.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, host: str | None = None) -> str:
        host = host or self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def local_hosts(self) -> set[str]:
        """The Host headers a browser on this machine sends to the page."""
        port = self.port
        names = {self.host, "localhost", "127.0.0.1", "[::1]"}
        return {f"{n}:{port}" for n in names} | {f"[{self.host}]:{port}"}


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "fota-dashboard"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # a page polling every two seconds would fill the terminal

    # -- answers ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None,
              head_only: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8", headers)

    def _refuse_method(self) -> None:
        self._text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET only", {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    # -- access -------------------------------------------------------------------------------
    def _token_given(self, query: dict[str, list[str]]) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):].strip()
        if "token" in query:
            return query["token"][0]
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.server.cookie:
                return value
        return None

    def _allowed(self, query: dict[str, list[str]]) -> bool:
        token = self.server.token
        if token is None:
            if self.headers.get("Host", "") not in self.server.local_hosts():
                self._text(HTTPStatus.FORBIDDEN, "this page answers only to this machine's "
                           "loopback names (localhost, 127.0.0.1)")
                return False
            return True
        given = self._token_given(query)
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            self._text(HTTPStatus.UNAUTHORIZED, "this page needs its token: open the address "
                       "`fota dashboard` printed (…/?token=...)")
            return False
        return True

    def do_HEAD(self) -> None:
        self.do_GET(head_only=True)

    def do_GET(self, head_only: bool = False) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._allowed(query):
            return
        if "token" in query and self.server.token is not None:
            # the token goes into a cookie, and out of the address bar (and the history)
            cookie = (f"{self.server.cookie}={self.server.token}; Path=/; HttpOnly; "
                      "SameSite=Strict")
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain",
                       {"Location": url.path or "/", "Set-Cookie": cookie}, head_only)
            return
        if url.path == "/":
            nonce = secrets.token_urlsafe(16)
            csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                   "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'")
            body = self.server.page.replace("{{nonce}}", nonce).encode()
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8",
                       {"Content-Security-Policy": csp}, head_only)
        elif url.path == "/api/state":
            self._send(HTTPStatus.OK, self.server.watcher.json(), "application/json",
                       head_only=head_only)
        elif url.path == "/favicon.ico":  # asked for by every browser: there is none
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain", head_only=True)
        else:
            self._text(HTTPStatus.NOT_FOUND, "no such page: / and /api/state")


class Dashboard:
    """The watcher's thread and the HTTP server's, started together (`start`) and stopped
    together (`stop`)."""

    def __init__(self, backend: Backend, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 token: str | None = None, interval: float = DEFAULT_INTERVAL,
                 max_jobs: int = MAX_JOBS):
        self.watcher = Watcher(backend, interval, max_jobs)
        self.server = DashboardServer(self.watcher, host, port, token)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return self.server.url()

    def start(self) -> "Dashboard":
        self.threads = [
            threading.Thread(target=self.watcher.run, args=(self.stop_event,), daemon=True,
                             name="dashboard-watcher"),
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True, name="dashboard-http"),
        ]
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        for t in self.threads:
            t.join(10)

    def __enter__(self) -> "Dashboard":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
