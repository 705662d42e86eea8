"""SQLite state of the AWS IoT stand-in: things, groups, certificates, jobs, executions, streams,
shadows.

Every method runs under one lock; `transaction()` groups several calls into one atomic write.
Rows come back as plain dicts; JSON columns are decoded by the caller (the jobs engine).
The database survives a restart of the service: timers are stored as absolute deadlines.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS things (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    certificate_id TEXT PRIMARY KEY,
    thing_name TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'ACTIVE'
);
CREATE TABLE IF NOT EXISTS thing_groups (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    PRIMARY KEY (group_name, thing_name)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    description TEXT,
    targets TEXT NOT NULL,
    target_selection TEXT NOT NULL,
    status TEXT NOT NULL,
    force_canceled INTEGER NOT NULL DEFAULT 0,
    reason_code TEXT,
    comment TEXT,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_updated_at REAL NOT NULL,
    completed_at REAL,
    rollout_rate REAL,
    window_start REAL,
    window_released INTEGER NOT NULL DEFAULT 0,
    notified_since_increase INTEGER NOT NULL DEFAULT 0,
    succeeded_since_increase INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_targets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    UNIQUE (job_id, thing_name)
);
CREATE TABLE IF NOT EXISTS rollout_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    UNIQUE (job_id, thing_name)
);
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    execution_number INTEGER NOT NULL,
    is_latest INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    status_details TEXT NOT NULL DEFAULT '{}',
    version INTEGER NOT NULL,
    retry_attempt INTEGER NOT NULL DEFAULT 0,
    force_canceled INTEGER NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL,
    started_at REAL,
    last_updated_at REAL NOT NULL,
    step_deadline REAL,
    timeout_deadline REAL,
    UNIQUE (job_id, thing_name, execution_number)
);
CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT PRIMARY KEY,
    description TEXT,
    role_arn TEXT,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stream_files (
    stream_id TEXT NOT NULL,
    file_id INTEGER NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    s3_version TEXT,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (stream_id, file_id)
);
CREATE TABLE IF NOT EXISTS shadows (
    thing_name TEXT NOT NULL,
    shadow_name TEXT NOT NULL,
    document TEXT,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (thing_name, shadow_name)
);
CREATE INDEX IF NOT EXISTS executions_by_thing ON executions (thing_name, status);
CREATE INDEX IF NOT EXISTS executions_by_job ON executions (job_id, is_latest);
CREATE INDEX IF NOT EXISTS executions_step ON executions (step_deadline) WHERE step_deadline IS NOT NULL;
CREATE INDEX IF NOT EXISTS executions_timeout ON executions (timeout_deadline) WHERE timeout_deadline IS NOT NULL;
"""

PENDING = ("IN_PROGRESS", "QUEUED")


def _dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


class Database:
    """One SQLite file, used from several threads under one lock."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=OFF")
        self.conn.executescript(SCHEMA)
        columns = [r["name"] for r in self.conn.execute("PRAGMA table_info(certificates)")]
        if "status" not in columns:  # a database of an older version
            self.conn.execute("ALTER TABLE certificates ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE'")
        self._depth = 0

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """Hold the lock and group every write inside into one commit (nestable)."""
        with self.lock:
            outer = self._depth == 0
            if outer:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self._depth -= 1
                if outer:
                    self.conn.execute("COMMIT")

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        with self.lock:
            return _dict(self.conn.execute(sql, args).fetchone())

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.conn.execute(sql, args).fetchall()]

    def _run(self, sql: str, *args: Any) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, args)

    # -- things, certificates, groups ---------------------------------------------------
    def add_thing(self, name: str, now: float) -> bool:
        return self._run("INSERT OR IGNORE INTO things (name, created_at) VALUES (?, ?)",
                         name, now).rowcount == 1

    def get_thing(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM things WHERE name = ?", name)

    def list_things(self) -> list[str]:
        return [r["name"] for r in self._all("SELECT name FROM things ORDER BY name")]

    def add_certificate(self, certificate_id: str, thing: str, pem: str, now: float) -> None:
        self._run("INSERT OR REPLACE INTO certificates (certificate_id, thing_name, certificate_pem, "
                  "created_at, status) VALUES (?, ?, ?, ?, 'ACTIVE')", certificate_id, thing, pem, now)

    def provisioned_things(self) -> list[str]:
        """Things that have at least one certificate."""
        return [r["thing_name"] for r in self._all(
            "SELECT DISTINCT thing_name FROM certificates WHERE thing_name != '' ORDER BY thing_name")]

    def certificates_of(self, thing: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM certificates WHERE thing_name = ? ORDER BY created_at", thing)

    def get_certificate(self, certificate_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM certificates WHERE certificate_id = ?", certificate_id)

    def set_certificate_status(self, certificate_id: str, status: str) -> bool:
        return self._run("UPDATE certificates SET status = ? WHERE certificate_id = ?",
                         status, certificate_id).rowcount == 1

    def detach_certificate(self, certificate_id: str, thing: str) -> bool:
        """The certificate no longer belongs to the thing (it is kept, attached to none)."""
        return self._run("UPDATE certificates SET thing_name = '' WHERE certificate_id = ? AND thing_name = ?",
                         certificate_id, thing).rowcount == 1

    def inactive_certificates(self) -> list[str]:
        """PEM of every certificate that must not connect."""
        return [r["certificate_pem"] for r in self._all(
            "SELECT certificate_pem FROM certificates WHERE status != 'ACTIVE'")]

    def add_group(self, name: str, now: float) -> bool:
        return self._run("INSERT OR IGNORE INTO thing_groups (name, created_at) VALUES (?, ?)",
                         name, now).rowcount == 1

    def get_group(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM thing_groups WHERE name = ?", name)

    def add_member(self, group: str, thing: str) -> bool:
        return self._run("INSERT OR IGNORE INTO group_members VALUES (?, ?)",
                         group, thing).rowcount == 1

    def remove_member(self, group: str, thing: str) -> bool:
        return self._run("DELETE FROM group_members WHERE group_name = ? AND thing_name = ?",
                         group, thing).rowcount == 1

    def group_members(self, group: str) -> list[str]:
        return [r["thing_name"] for r in self._all(
            "SELECT thing_name FROM group_members WHERE group_name = ? ORDER BY rowid", group)]

    def list_groups(self) -> list[str]:
        return [r["name"] for r in self._all("SELECT name FROM thing_groups ORDER BY name")]

    def groups_of(self, thing: str) -> list[str]:
        return [r["group_name"] for r in self._all(
            "SELECT group_name FROM group_members WHERE thing_name = ? ORDER BY group_name", thing)]

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, row: dict[str, Any]) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self._run(f"INSERT INTO jobs ({cols}) VALUES ({marks})", *row.values())

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM jobs WHERE job_id = ?", job_id)

    def update_job(self, job_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._run(f"UPDATE jobs SET {sets} WHERE job_id = ?", *fields.values(), job_id)

    def list_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        if status:
            return self._all("SELECT * FROM jobs WHERE status = ? ORDER BY created_at", status)
        return self._all("SELECT * FROM jobs ORDER BY created_at")

    def delete_job(self, job_id: str) -> None:
        with self.transaction():
            self._run("DELETE FROM executions WHERE job_id = ?", job_id)
            self._run("DELETE FROM rollout_queue WHERE job_id = ?", job_id)
            self._run("DELETE FROM job_targets WHERE job_id = ?", job_id)
            self._run("DELETE FROM jobs WHERE job_id = ?", job_id)

    def active_jobs(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM jobs WHERE status = 'IN_PROGRESS' ORDER BY created_at")

    # -- the things a job targets, as it saw them (group members when it was created) -------
    def add_job_targets(self, job_id: str, things: list[str]) -> None:
        with self.lock:
            self.conn.executemany("INSERT OR IGNORE INTO job_targets (job_id, thing_name) VALUES (?, ?)",
                                  [(job_id, t) for t in things])

    def job_targets(self, job_id: str) -> list[str]:
        return [r["thing_name"] for r in self._all(
            "SELECT thing_name FROM job_targets WHERE job_id = ? ORDER BY seq", job_id)]

    def drop_job_target(self, job_id: str, thing: str) -> None:
        self._run("DELETE FROM job_targets WHERE job_id = ? AND thing_name = ?", job_id, thing)

    # -- the rollout queue: targets not yet given an execution ----------------------------
    def enqueue_targets(self, job_id: str, things: list[str]) -> None:
        with self.lock:
            self.conn.executemany("INSERT OR IGNORE INTO rollout_queue (job_id, thing_name) VALUES (?, ?)",
                                  [(job_id, t) for t in things])

    def take_targets(self, job_id: str, n: int) -> list[str]:
        with self.transaction():
            rows = self._all("SELECT seq, thing_name FROM rollout_queue WHERE job_id = ? ORDER BY seq LIMIT ?",
                             job_id, n)
            if rows:
                self.conn.executemany("DELETE FROM rollout_queue WHERE seq = ?", [(r["seq"],) for r in rows])
            return [r["thing_name"] for r in rows]

    def queued_targets(self, job_id: str) -> list[str]:
        return [r["thing_name"] for r in self._all(
            "SELECT thing_name FROM rollout_queue WHERE job_id = ? ORDER BY seq", job_id)]

    def count_queued_targets(self, job_id: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM rollout_queue WHERE job_id = ?", job_id)
        return int(row["n"]) if row else 0

    def drop_target(self, job_id: str, thing: str) -> bool:
        return self._run("DELETE FROM rollout_queue WHERE job_id = ? AND thing_name = ?",
                         job_id, thing).rowcount == 1

    def drop_targets(self, job_id: str) -> None:
        self._run("DELETE FROM rollout_queue WHERE job_id = ?", job_id)

    # -- executions -----------------------------------------------------------------------
    def insert_execution(self, row: dict[str, Any]) -> int:
        with self.transaction():
            self._run("UPDATE executions SET is_latest = 0 WHERE job_id = ? AND thing_name = ?",
                      row["job_id"], row["thing_name"])
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            cur = self._run(f"INSERT INTO executions ({cols}) VALUES ({marks})", *row.values())
            return int(cur.lastrowid or 0)

    def get_execution(self, job_id: str, thing: str, number: int | None = None) -> dict[str, Any] | None:
        if number is None:
            return self._one("SELECT * FROM executions WHERE job_id = ? AND thing_name = ? AND is_latest = 1",
                             job_id, thing)
        return self._one("SELECT * FROM executions WHERE job_id = ? AND thing_name = ? AND execution_number = ?",
                         job_id, thing, number)

    def get_execution_by_seq(self, seq: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM executions WHERE seq = ?", seq)

    def update_execution(self, seq: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._run(f"UPDATE executions SET {sets} WHERE seq = ?", *fields.values(), seq)

    def pending_for_thing(self, thing: str) -> list[dict[str, Any]]:
        """Every pending execution of the thing: IN_PROGRESS ones first, then QUEUED ones, each
        by the time it was queued (AWS's order for the pending list and the next execution)."""
        return self._all(
            "SELECT * FROM executions WHERE thing_name = ? AND status IN ('IN_PROGRESS', 'QUEUED') "
            "ORDER BY CASE status WHEN 'IN_PROGRESS' THEN 0 ELSE 1 END, queued_at, seq", thing)

    def executions_for_job(self, job_id: str, status: str | None = None,
                           latest_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM executions WHERE job_id = ?"
        args: list[Any] = [job_id]
        if latest_only:
            sql += " AND is_latest = 1"
        if status:
            sql += " AND status = ?"
            args.append(status)
        return self._all(sql + " ORDER BY seq", *args)

    def executions_for_thing(self, thing: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM executions WHERE thing_name = ? ORDER BY seq", thing)

    def status_counts(self, job_id: str) -> dict[str, int]:
        rows = self._all("SELECT status, COUNT(*) AS n FROM executions WHERE job_id = ? AND is_latest = 1 "
                         "GROUP BY status", job_id)
        return {r["status"]: int(r["n"]) for r in rows}

    def terminal_counts_all(self, job_id: str) -> dict[str, int]:
        """Counts over every execution (retries included) by status."""
        rows = self._all("SELECT status, COUNT(*) AS n FROM executions WHERE job_id = ? GROUP BY status", job_id)
        return {r["status"]: int(r["n"]) for r in rows}

    def due_timeouts(self, now: float) -> list[dict[str, Any]]:
        return self._all(
            "SELECT * FROM executions WHERE status = 'IN_PROGRESS' AND "
            "((step_deadline IS NOT NULL AND step_deadline <= ?) OR "
            "(timeout_deadline IS NOT NULL AND timeout_deadline <= ?)) ORDER BY seq", now, now)

    # -- streams (MQTT-based file delivery) -------------------------------------------------
    def get_stream(self, stream_id: str, deleted: bool = False) -> dict[str, Any] | None:
        """The stream; a deleted one (kept for its version) only with `deleted`."""
        row = self._one("SELECT * FROM streams WHERE stream_id = ?", stream_id)
        if row is not None and row["deleted"] and not deleted:
            return None
        return row

    def put_stream(self, row: dict[str, Any], files: list[dict[str, Any]] | None) -> None:
        """Insert or replace a stream; `files` (when not None) replace its files."""
        with self.transaction():
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            self._run(f"INSERT OR REPLACE INTO streams ({cols}) VALUES ({marks})", *row.values())
            if files is not None:
                self._run("DELETE FROM stream_files WHERE stream_id = ?", row["stream_id"])
                for f in files:
                    fcols = ", ".join(f)
                    self._run(f"INSERT INTO stream_files (stream_id, {fcols}) VALUES (?, "
                              + ", ".join("?" for _ in f) + ")", row["stream_id"], *f.values())

    def stream_files(self, stream_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM stream_files WHERE stream_id = ? ORDER BY file_id", stream_id)

    def stream_file(self, stream_id: str, file_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM stream_files WHERE stream_id = ? AND file_id = ?", stream_id, file_id)

    def delete_stream(self, stream_id: str, now: float) -> None:
        """Forget the stream's files; its row stays (deleted) so that a stream created again
        under the same id continues its versions, as AWS IoT does."""
        with self.transaction():
            self._run("DELETE FROM stream_files WHERE stream_id = ?", stream_id)
            self._run("UPDATE streams SET deleted = 1, last_updated_at = ? WHERE stream_id = ?", now, stream_id)

    def list_streams(self) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM streams WHERE deleted = 0 ORDER BY created_at, stream_id")

    # -- device shadows -------------------------------------------------------------------------
    def get_shadow(self, thing: str, name: str) -> dict[str, Any] | None:
        """The shadow's row; `document` is None for a deleted one (kept for its version)."""
        return self._one("SELECT * FROM shadows WHERE thing_name = ? AND shadow_name = ?", thing, name)

    def put_shadow(self, thing: str, name: str, document: str | None, version: int, now: float) -> None:
        self._run("INSERT OR REPLACE INTO shadows (thing_name, shadow_name, document, version, updated_at) "
                  "VALUES (?, ?, ?, ?, ?)", thing, name, document, version, now)
