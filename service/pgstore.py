"""Job persistence in PostgreSQL (``MIRRORLINE_DATABASE_URL``): the multi-node mode.

The same methods as :class:`service.store.Store`, so routes and the job manager do not
care which one they hold, plus what many nodes need: a job's audio kept in the database
(``audio_chunks``, 1 MB rows, so a worker on any machine reads it and it leaves with the
job) or, with ``AUDIO_STORE_URL``, in an S3-compatible bucket (``service.s3audio``: the
object is written before the job's row commits and removed if that fails), the queue entry
written in the job's own transaction (``defer``), a claim that lets
several workers race for one job safely, and webhook deliveries leased so one node sends
each attempt. Every write that finishes a job is guarded by the job's status, so a job run
twice (a worker presumed dead that was not) still stores its result once.

Connections come from a pool that checks each one before use, so a restarted database is
reconnected to without restarting the node; while it is down, calls raise
``psycopg.OperationalError`` (answered 503 ``server.unavailable``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from dsp.errors import MirrorlineError
from service.pg_schema import migrate
from service.s3audio import SCHEME, S3Audio
from service.store import _JOB_COLUMNS, AUDIO_PREFIX, STATUSES, Job, _job

CHUNK_BYTES = 1 << 20

UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout)
"""What a call raises while the database is unreachable (answered 503 server.unavailable)."""

Defer = Callable[[psycopg.Connection[Any], str], None]
"""Puts a job id on the task queue, on the connection of the transaction that creates it."""


class PgStore:
    """Jobs, their audio and webhook deliveries in PostgreSQL, shared by every node."""

    def __init__(
        self,
        url: str,
        *,
        defer: Defer | None = None,
        worker_stalled_s: float = 30.0,
        max_connections: int = 8,
        audio: S3Audio | None = None,
    ) -> None:
        self.url = url
        self.audio = audio
        self.worker_stalled_s = worker_stalled_s
        self.path = url  # where progress is written (service.worker.ProgressWriter)
        self.defer = defer
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "row_factory": dict_row},
            check=ConnectionPool.check_connection,
            open=False,
            timeout=5.0,
        )
        self.pool.open(wait=False)
        try:
            with self._conn() as conn:
                migrate(conn)
        except BaseException:  # a refused schema or no database: no pool threads left behind
            self.pool.close()
            raise

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        with self._conn() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(sql, args).fetchall()

    def ping(self) -> bool:
        row = self._one("SELECT 1 AS one")
        return row is not None and row["one"] == 1

    def health(self) -> dict[str, str]:
        """Readiness: the database answers, and so does the task queue's table."""
        checks = {}
        for name, sql in (
            ("database", "SELECT 1"),
            ("queue", "SELECT 1 FROM procrastinate_jobs LIMIT 1"),
        ):
            try:
                self._all(sql)
                checks[name] = "ok"
            except (psycopg.Error, PoolTimeout) as exc:
                checks[name] = f"unavailable ({exc.__class__.__name__})"
        if self.audio is not None:
            try:
                self.audio.check()
                checks["audio_store"] = "ok"
            except MirrorlineError as exc:
                checks["audio_store"] = f"unavailable ({exc.code})"
        return checks

    # -- jobs -----------------------------------------------------------------------------

    def create_job(self, values: dict[str, Any]) -> tuple[Job, bool]:
        """Insert a queued job, move its audio file into the database and put it on the
        queue, all in one transaction (a node dying half-way leaves nothing behind); with
        an idempotency key already used, return that job instead. ``(job, created)``.

        With an audio store the audio is uploaded first (unreachable: raises
        ``AudioStoreUnavailable`` and nothing is written) and deleted again when the
        transaction fails or finds the key used; a node dying between the two leaves an
        object no job refers to, for the bucket's lifecycle rule."""
        row = dict(values)
        row["config"] = json.dumps(row["config"])
        local_audio = row.get("audio_path")
        if local_audio is not None and self.audio is not None:
            row["audio_path"] = self.audio.put(row["id"], Path(local_audio))
            try:
                job, created = self._insert(row, None)
            except BaseException:
                self.audio.delete(row["id"])
                raise
            if not created:
                self.audio.delete(row["id"])
        else:
            if local_audio is not None:
                row["audio_path"] = AUDIO_PREFIX + row["id"]
            job, created = self._insert(row, None if local_audio is None else Path(local_audio))
        if local_audio is not None:
            Path(local_audio).unlink(missing_ok=True)
        return job, created

    def _insert(self, row: dict[str, Any], audio_file: Path | None) -> tuple[Job, bool]:
        """The job's row (its audio rows from ``audio_file``) and queue entry, in one
        transaction."""
        columns = ", ".join(row)
        marks = ", ".join("%s" for _ in row)
        with self._tx() as conn:
            created = conn.execute(
                f"INSERT INTO jobs ({columns}) VALUES ({marks}) "  # noqa: S608 (our names)
                "ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL "
                f"DO NOTHING RETURNING {_JOB_COLUMNS}",
                tuple(row.values()),
            ).fetchone()
            if created is None:
                found = conn.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = %s AND idempotency_key = %s",
                    (row["owner"], row["idempotency_key"]),
                ).fetchone()
                assert found is not None
                return _job(found), False
            if audio_file is not None:
                self._write_audio(conn, row["id"], audio_file)
            if self.defer is not None:
                self.defer(conn, row["id"])
        return _job(created), True

    @staticmethod
    def _write_audio(conn: psycopg.Connection[Any], job_id: str, path: Path) -> None:
        with path.open("rb") as f:
            seq = 0
            while chunk := f.read(CHUNK_BYTES):
                conn.execute(
                    "INSERT INTO audio_chunks (job_id, seq, data) VALUES (%s, %s, %s)",
                    (job_id, seq, chunk),
                )
                seq += 1

    def read_audio(self, job: Job, target: Path) -> bool:
        """Write a job's stored audio into ``target``; False when none is stored (raises
        ``AudioStoreUnavailable`` when its audio store cannot be reached)."""
        if job.audio_path is not None and job.audio_path.startswith(SCHEME):
            return self.audio is not None and self.audio.get(job.id, target)
        job_id = job.id
        with self._conn() as conn, target.open("wb") as out:
            found = False
            cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
            for (chunk,) in cur.execute(
                "SELECT data FROM audio_chunks WHERE job_id = %s ORDER BY seq", (job_id,)
            ):
                out.write(chunk)
                found = True
        return found

    def get(self, job_id: str, *, owner: str | None = None) -> Job | None:
        row = self._one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        if row is None:
            return None
        job = _job(row)
        if owner is not None and job.owner != owner:
            return None
        return job

    def by_key(self, owner: str, idempotency_key: str) -> Job | None:
        row = self._one(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = %s AND idempotency_key = %s",
            (owner, idempotency_key),
        )
        return None if row is None else _job(row)

    def result(self, job_id: str) -> tuple[str | None, str | None]:
        row = self._one("SELECT report, windows_csv FROM jobs WHERE id = %s", (job_id,))
        return (None, None) if row is None else (row["report"], row["windows_csv"])

    def list_jobs(
        self, *, owner: str, limit: int, after: tuple[float, str] | None, status: str | None
    ) -> list[Job]:
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE owner = %s"
        args: list[Any] = [owner]
        if status is not None:
            sql += " AND status = %s"
            args.append(status)
        if after is not None:
            sql += " AND (created_at < %s OR (created_at = %s AND id < %s))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_at DESC, id DESC LIMIT %s"
        args.append(limit)
        return [_job(r) for r in self._all(sql, args)]

    def count(self, status: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM jobs WHERE status = %s", (status,))
        return 0 if row is None else int(row["n"])

    def counts(self) -> dict[str, int]:
        rows = self._all("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        found = {r["status"]: int(r["n"]) for r in rows}
        return {s: found.get(s, 0) for s in STATUSES}

    def queue_stats(self) -> dict[str, float]:
        """Jobs waiting, the age of the oldest (s) and the worker nodes alive (a heartbeat
        in the last ``worker_stalled_s``)."""
        row = self._one(
            "SELECT COUNT(*) AS queued, MIN(created_at) AS oldest FROM jobs WHERE status = 'queued'"
        )
        workers = self._one(
            "SELECT COUNT(*) AS n FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - make_interval(secs => %s)",
            (self.worker_stalled_s,),
        )
        oldest = None if row is None else row["oldest"]
        return {
            "queued": 0 if row is None else int(row["queued"]),
            "oldest_queued_age_s": 0.0 if oldest is None else max(0.0, time.time() - oldest),
            "workers": 0 if workers is None else int(workers["n"]),
        }

    def claim(self, job_id: str) -> Job | None:
        """Switch a queued (or interrupted ``processing``) job to ``processing``, attempts
        + 1; None when it is finished or gone (nothing to run)."""
        row = self._one(
            "UPDATE jobs SET status = 'processing', started_at = %s, attempts = attempts + 1, "
            "progress = NULL, processed_s = NULL "
            "WHERE id = %s AND status IN ('queued', 'processing') "
            f"RETURNING {_JOB_COLUMNS}",
            (time.time(), job_id),
        )
        return None if row is None else _job(row)

    def claim_next(self) -> Job | None:
        """Oldest queued job, switched to ``processing`` (the embedded dispatcher's way;
        worker nodes take jobs from the task queue and :meth:`claim` them)."""
        row = self._one(
            "UPDATE jobs SET status = 'processing', started_at = %s, attempts = attempts + 1, "
            "progress = NULL, processed_s = NULL WHERE id = (SELECT id FROM jobs "
            "WHERE status = 'queued' ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
            f"RETURNING {_JOB_COLUMNS}",
            (time.time(),),
        )
        return None if row is None else _job(row)

    def complete(
        self,
        job_id: str,
        report: str,
        windows_csv: str,
        *,
        ttl_s: float,
        evidence: bytes | None = None,
    ) -> bool:
        now = time.time()
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'completed', finished_at = %s, expires_at = %s, "
                "report = %s, windows_csv = %s, evidence = %s, error_code = NULL, "
                "error_message = NULL, progress = 1.0 WHERE id = %s AND status = 'processing'",
                (now, now + ttl_s, report, windows_csv, evidence, job_id),
            )
            return cur.rowcount == 1

    def evidence(self, job_id: str) -> bytes | None:
        row = self._one("SELECT evidence FROM jobs WHERE id = %s", (job_id,))
        return None if row is None or row["evidence"] is None else bytes(row["evidence"])

    def fail(self, job_id: str, code: str, message: str, *, ttl_s: float) -> bool:
        now = time.time()
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = 'failed', finished_at = %s, expires_at = %s, "
                "error_code = %s, error_message = %s WHERE id = %s AND status IN "
                "('queued', 'processing')",
                (now, now + ttl_s, code, message, job_id),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: str, *, refund_attempt: bool) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'queued', started_at = NULL, progress = NULL, "
                "processed_s = NULL, attempts = GREATEST(0, attempts - %s) "
                "WHERE id = %s AND status = 'processing'",
                (1 if refund_attempt else 0, job_id),
            )

    def set_progress(self, job_id: str, progress: float | None, processed_s: float) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE jobs SET progress = %s, processed_s = %s "
                "WHERE id = %s AND status = 'processing'",
                (progress, processed_s, job_id),
            )
            return cur.rowcount == 1

    def forget_audio(self, job_id: str) -> None:
        if self.audio is not None:
            self.audio.delete(job_id)
        with self._tx() as conn:
            conn.execute("DELETE FROM audio_chunks WHERE job_id = %s", (job_id,))
            conn.execute("UPDATE jobs SET audio_path = NULL WHERE id = %s", (job_id,))

    def by_status(self, status: str) -> list[Job]:
        rows = self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status = %s ORDER BY created_at", (status,)
        )
        return [_job(r) for r in rows]

    def delete(self, job_id: str, *, scrub: bool = True) -> Job | None:
        """Delete a job, its audio, result and webhook deliveries (``scrub``: nothing to do
        here; the database's own vacuum reclaims the space)."""
        with self._tx() as conn:
            row = conn.execute(
                f"DELETE FROM jobs WHERE id = %s RETURNING {_JOB_COLUMNS}", (job_id,)
            ).fetchone()
            conn.execute("DELETE FROM audio_chunks WHERE job_id = %s", (job_id,))
            conn.execute("DELETE FROM webhooks WHERE job_id = %s", (job_id,))
        if row is not None and self.audio is not None and row["audio_path"] is not None:
            self.audio.delete(job_id)
        return None if row is None else _job(row)

    def scrub(self) -> bool:
        return True

    def expired(self, now: float) -> list[Job]:
        rows = self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE expires_at IS NOT NULL AND expires_at < %s",
            (now,),
        )
        return [_job(r) for r in rows]

    def audio_paths(self) -> set[str]:
        return set()  # no node-local audio file belongs to a stored job

    # -- webhooks -------------------------------------------------------------------------

    def add_webhook(self, message_id: str, job_id: str, url: str, body: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO webhooks (id, job_id, url, body, attempts, next_at, status) "
                "VALUES (%s, %s, %s, %s, 0, %s, 'pending') ON CONFLICT (id) DO NOTHING",
                (message_id, job_id, url, body, time.time()),
            )

    def due_webhooks(
        self, now: float, limit: int, *, lease_s: float = 60.0
    ) -> list[dict[str, Any]]:
        """Due deliveries, leased to this node for ``lease_s`` (another node skips them
        until then; the attempt's result replaces the lease)."""
        return self._all(
            "UPDATE webhooks SET next_at = %s WHERE id IN (SELECT id FROM webhooks "
            "WHERE status = 'pending' AND next_at <= %s ORDER BY next_at LIMIT %s "
            "FOR UPDATE SKIP LOCKED) RETURNING *",
            (now + lease_s, now, limit),
        )

    def next_webhook_at(self) -> float | None:
        row = self._one("SELECT MIN(next_at) AS at FROM webhooks WHERE status = 'pending'")
        return None if row is None or row["at"] is None else float(row["at"])

    def webhook_attempted(
        self, message_id: str, *, status: str, next_at: float, error: str | None
    ) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE webhooks SET attempts = attempts + 1, status = %s, next_at = %s, "
                "last_error = %s WHERE id = %s",
                (status, next_at, error, message_id),
            )

    def webhooks_of(self, job_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM webhooks WHERE job_id = %s", (job_id,))
