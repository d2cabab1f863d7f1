"""The PostgreSQL schema as numbered migrations, applied by whichever node starts first.

Each node runs :func:`migrate` at start-up: under a transaction-level advisory lock (nodes
starting together wait for each other), it applies the migrations not yet recorded in
``mirrorline_migrations``, each in the same transaction as its record, then the task
queue's own schema (procrastinate's) when the database has none. A new release appends a
migration here, never edits one; an old node meeting a newer schema refuses to start.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dsp.errors import MirrorlineError

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "jobs, webhook deliveries, job audio",
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            expires_at DOUBLE PRECISION,
            config TEXT NOT NULL,
            filename TEXT,
            audio_path TEXT,
            keep_audio BOOLEAN NOT NULL DEFAULT FALSE,
            size_bytes BIGINT NOT NULL DEFAULT 0,
            idempotency_key TEXT,
            fingerprint TEXT,
            callback_url TEXT,
            base_url TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error_code TEXT,
            error_message TEXT,
            report TEXT,
            windows_csv TEXT,
            evidence BYTEA,
            progress DOUBLE PRECISION,
            processed_s DOUBLE PRECISION
        );
        CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE INDEX jobs_status ON jobs(status, created_at);
        CREATE INDEX jobs_listing ON jobs(owner, created_at, id);
        CREATE INDEX jobs_expiry ON jobs(expires_at);
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            job_id TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            last_error TEXT
        );
        CREATE INDEX webhooks_due ON webhooks(status, next_at);
        CREATE INDEX webhooks_job ON webhooks(job_id);
        CREATE TABLE audio_chunks (
            job_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (job_id, seq)
        );
        """,
    ),
)

LOCK_KEY = 0x6D6972726F72  # "mirror": one advisory lock for schema changes


class SchemaTooNew(MirrorlineError):
    """The database was migrated by a newer release than this node's."""

    code = "server.schema_too_new"


def schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT to_regclass('mirrorline_migrations') IS NOT NULL AS present"
    ).fetchone()
    if not _first(row):
        return 0
    found = conn.execute("SELECT COALESCE(MAX(version), 0) FROM mirrorline_migrations").fetchone()
    return int(_first(found) or 0)


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Bring the database to this release's schema; returns the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS mirrorline_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        current = schema_version(conn)
        latest = MIGRATIONS[-1][0]
        if current > latest:
            raise SchemaTooNew(
                f"the database schema is version {current}, newer than this release's "
                f"{latest}: upgrade this node (docs/deploy.md#upgrade)"
            )
        for version, name, sql in MIGRATIONS:
            if version > current:
                conn.execute(sql.encode())
                conn.execute(
                    "INSERT INTO mirrorline_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(version)
        queue = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
        if not _first(queue):
            from procrastinate.schema import SchemaManager

            conn.execute(SchemaManager.get_schema().encode())
    return applied
