"""Job persistence in SQLite (``DATA_DIR/jobs.sqlite3``): jobs and pending webhook deliveries.

One connection, guarded by a lock, used from the event loop thread and helper threads.
Statements are short (indexed lookups, one-row writes), so they do not stall the loop.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from service.s3audio import SCHEME

if TYPE_CHECKING:
    from service.pgstore import PgStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL,
    config TEXT NOT NULL,
    filename TEXT,
    audio_path TEXT,
    keep_audio INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    fingerprint TEXT,
    callback_url TEXT,
    base_url TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    report TEXT,
    windows_csv TEXT,
    progress REAL,
    processed_s REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs(owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs(owner, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs(expires_at);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks(status, next_at);
"""

STATUSES = ("queued", "processing", "completed", "failed")

AUDIO_PREFIX = "db:"
"""``audio_path`` of a job whose audio is stored in the database (multi-node), not a file."""


def audio_stored_remotely(audio_path: str | None) -> bool:
    """The audio is in the database or the audio store (multi-node), not a local file."""
    return audio_path is not None and audio_path.startswith((AUDIO_PREFIX, SCHEME))


JobStore: TypeAlias = "Store | PgStore"
"""Either job store: this SQLite one (embedded) or ``service.pgstore.PgStore`` (multi-node);
both have the same methods."""

# Columns added after the first release: (name, type), added to older databases at start-up.
ADDED_COLUMNS = (("progress", "REAL"), ("processed_s", "REAL"), ("evidence", "BLOB"))

PROGRESS_SQL = (
    "UPDATE jobs SET progress = ?, processed_s = ? WHERE id = ? AND status = 'processing'"
)
"""Written by the worker processes (``service.worker.ProgressWriter``) on their own connection."""


@dataclass(frozen=True)
class Job:
    """One row of ``jobs`` (the report and CSV are loaded only when asked for)."""

    id: str
    owner: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    config: dict[str, Any]
    filename: str | None
    audio_path: str | None
    keep_audio: bool
    size_bytes: int
    idempotency_key: str | None
    fingerprint: str | None
    callback_url: str | None
    base_url: str
    attempts: int
    error_code: str | None
    error_message: str | None
    progress: float | None = None
    processed_s: float | None = None


_JOB_COLUMNS = (
    "id, owner, status, created_at, started_at, finished_at, expires_at, config, filename, "
    "audio_path, keep_audio, size_bytes, idempotency_key, fingerprint, callback_url, base_url, "
    "attempts, error_code, error_message, progress, processed_s"
)


def _job(row: sqlite3.Row | Mapping[str, Any]) -> Job:
    values = dict(row)
    values["config"] = json.loads(values["config"])
    values["keep_audio"] = bool(values["keep_audio"])
    return Job(**values)


def encode_cursor(created_at: float, job_id: str) -> str:
    raw = json.dumps([created_at, job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        return float(created_at), str(job_id)
    except (ValueError, TypeError):
        return None


class Store:
    """Jobs and webhook deliveries in one SQLite file (WAL mode)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # Deleted rows are overwritten with zeros in the database file (not just unlinked
        # from the b-tree); see ``scrub`` for the copies the write-ahead log keeps.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a database made by an older version lacks."""
        with self._lock:
            have = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)").fetchall()}
            for name, kind in ADDED_COLUMNS:
                if name not in have:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone()[0] == 1

    def health(self) -> dict[str, str]:
        """Readiness of the database and the queue (here one SQLite file holds both)."""
        try:
            state = "ok" if self.ping() else "no answer"
        except sqlite3.Error as exc:
            state = f"unavailable ({exc.__class__.__name__})"
        return {"database": state, "queue": state}

    def queue_stats(self) -> dict[str, float]:
        """Jobs waiting and the age of the oldest, s (the workers are this server's)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM jobs WHERE status = 'queued'"
            ).fetchone()
        oldest = row[1]
        return {
            "queued": int(row[0]),
            "oldest_queued_age_s": 0.0 if oldest is None else max(0.0, time.time() - oldest),
        }

    # -- jobs -----------------------------------------------------------------------------

    def create_job(self, values: dict[str, Any]) -> tuple[Job, bool]:
        """Insert a queued job; with an idempotency key already used, return that job instead.

        Returns ``(job, created)``.
        """
        row = dict(values)
        row["config"] = json.dumps(row["config"])
        row["keep_audio"] = int(row["keep_audio"])
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._tx() as db:
            if row.get("idempotency_key") is not None:
                found = db.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = ? AND idempotency_key = ?",
                    (row["owner"], row["idempotency_key"]),
                ).fetchone()
                if found is not None:
                    return _job(found), False
            db.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", tuple(row.values()))
            created = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (row["id"],)
            ).fetchone()
        return _job(created), True

    def get(self, job_id: str, *, owner: str | None = None) -> Job | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            return None
        job = _job(row)
        if owner is not None and job.owner != owner:
            return None
        return job

    def by_key(self, owner: str, idempotency_key: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = ? AND idempotency_key = ?",
                (owner, idempotency_key),
            ).fetchone()
        return None if row is None else _job(row)

    def result(self, job_id: str) -> tuple[str | None, str | None]:
        """The stored report JSON and windows CSV of a job (None when absent)."""
        with self._lock:
            row = self._db.execute(
                "SELECT report, windows_csv FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return (None, None) if row is None else (row["report"], row["windows_csv"])

    def list_jobs(
        self, *, owner: str, limit: int, after: tuple[float, str] | None, status: str | None
    ) -> list[Job]:
        """Jobs of one owner, newest first, strictly after the cursor position."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = ?"
        args: list[Any] = [owner]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if after is not None:
            sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_job(r) for r in rows]

    def count(self, status: str) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)
                ).fetchone()[0]
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        found = {r[0]: int(r[1]) for r in rows}
        return {s: found.get(s, 0) for s in STATUSES}

    def claim_next(self) -> Job | None:
        """Oldest queued job, switched to ``processing`` (attempts + 1), or None."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'processing', started_at = ?, attempts = attempts + 1, "
                "progress = NULL, processed_s = NULL WHERE id = ?",
                (time.time(), row["id"]),
            )
            found = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (row["id"],))
            return _job(found.fetchone())

    def complete(
        self,
        job_id: str,
        report: str,
        windows_csv: str,
        *,
        ttl_s: float,
        evidence: bytes | None = None,
    ) -> bool:
        """Store a processing job's result (progress 1.0) and the ZIP of its mirroring
        evidence; False when it is no longer there."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET status = 'completed', finished_at = ?, expires_at = ?, "
                "report = ?, windows_csv = ?, evidence = ?, error_code = NULL, "
                "error_message = NULL, progress = 1.0 WHERE id = ? AND status = 'processing'",
                (now, now + ttl_s, report, windows_csv, evidence, job_id),
            )
            return cur.rowcount == 1

    def evidence(self, job_id: str) -> bytes | None:
        """The ZIP of a completed job's mirroring evidence (None: none stored)."""
        with self._lock:
            row = self._db.execute("SELECT evidence FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None or row["evidence"] is None else bytes(row["evidence"])

    def fail(self, job_id: str, code: str, message: str, *, ttl_s: float) -> bool:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, expires_at = ?, "
                "error_code = ?, error_message = ? WHERE id = ? AND status IN "
                "('queued', 'processing')",
                (now, now + ttl_s, code, message, job_id),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: str, *, refund_attempt: bool) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL, progress = NULL, "
                "processed_s = NULL, attempts = MAX(0, attempts - ?) "
                "WHERE id = ? AND status = 'processing'",
                (1 if refund_attempt else 0, job_id),
            )

    def set_progress(self, job_id: str, progress: float | None, processed_s: float) -> bool:
        """Record a processing job's progress (the workers write the same row themselves)."""
        with self._tx() as db:
            return db.execute(PROGRESS_SQL, (progress, processed_s, job_id)).rowcount == 1

    def forget_audio(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET audio_path = NULL WHERE id = ?", (job_id,))

    def by_status(self, status: str) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = ? ORDER BY created_at", (status,)
            ).fetchall()
        return [_job(r) for r in rows]

    def delete(self, job_id: str, *, scrub: bool = True) -> Job | None:
        """Delete a job, its result and its webhook deliveries; returns the deleted row.

        With ``scrub`` (the default) nothing of the row stays recoverable on disk: see
        :meth:`scrub`.
        """
        with self._tx() as db:
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM webhooks WHERE job_id = ?", (job_id,))
        if scrub:
            self.scrub()
        return _job(row)

    def scrub(self) -> bool:
        """Make deleted rows unrecoverable from every file: the write-ahead log still holds
        the pages as they were before the delete, so it is checkpointed into the database
        (where ``secure_delete`` zeroed the rows) and truncated to zero bytes. False when a
        reader kept the log from being truncated (the next scrub finishes it)."""
        with self._lock:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(busy) == 0

    def expired(self, now: float) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ?",
                (now,),
            ).fetchall()
        return [_job(r) for r in rows]

    def audio_paths(self) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT audio_path FROM jobs WHERE audio_path IS NOT NULL"
            ).fetchall()
        return {r[0] for r in rows}

    # -- webhooks -------------------------------------------------------------------------

    def add_webhook(self, message_id: str, job_id: str, url: str, body: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO webhooks (id, job_id, url, body, attempts, next_at, status)"
                " VALUES (?, ?, ?, ?, 0, ?, 'pending')",
                (message_id, job_id, url, body, time.time()),
            )

    def due_webhooks(self, now: float, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM webhooks WHERE status = 'pending' AND next_at <= ? "
                "ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [dict(r) for r in rows]

    def next_webhook_at(self) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_at) FROM webhooks WHERE status = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def webhook_attempted(
        self, message_id: str, *, status: str, next_at: float, error: str | None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE webhooks SET attempts = attempts + 1, status = ?, next_at = ?, "
                "last_error = ? WHERE id = ?",
                (status, next_at, error, message_id),
            )

    def webhooks_of(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM webhooks WHERE job_id = ?", (job_id,))
            return [dict(r) for r in rows.fetchall()]
