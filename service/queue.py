"""The task queue of the multi-node mode: procrastinate on the same PostgreSQL database.

Why procrastinate: the database already holds the jobs, so a queue in it adds no server to
run, back up or watch (Redis + Celery would add two), and a job's row, audio and queue
entry are written in one transaction (an API node dying half-way leaves nothing behind).
Workers take entries with ``FOR UPDATE SKIP LOCKED`` and are woken by ``LISTEN/NOTIFY``;
queue overhead per job is measured by ``bench/scale.py``.

At-least-once: each worker node sends a heartbeat every ``WORKER_HEARTBEAT_S``; each one
also looks every ``WORKER_HEARTBEAT_S`` for entries held by a worker silent for
``WORKER_STALLED_S`` (killed, machine gone) and puts them back, so such a job runs again
elsewhere within about ``WORKER_STALLED_S + 2 x WORKER_HEARTBEAT_S``. Running a job twice
is harmless (``JobManager.run_queued``): the result is stored once, the webhook carries
the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector, RetryStrategy, SyncPsycopgConnector

from service.settings import Settings

log = logging.getLogger("mirrorline.queue")

TASK = "mirrorline.analyze"
QUEUE = "analyses"

# A job whose run raised (the database went away while storing its result) is tried again;
# its run is idempotent.
RETRY = RetryStrategy(max_attempts=20, exponential_wait=2)


def api_defer(settings: Settings) -> Callable[[psycopg.Connection[Any], str], None]:
    """How an API node queues a job: ``defer(connection, job_id)`` adds the job's entry
    inside the transaction that creates its row (the task runs on worker nodes only)."""
    assert settings.database_url is not None
    app = App(connector=SyncPsycopgConnector(conninfo=settings.database_url))

    def defer(conn: psycopg.Connection[Any], job_id: str) -> None:
        app.configure_task(TASK, queue=QUEUE, queueing_lock=job_id, connection=conn).defer(
            job_id=job_id
        )

    return defer


async def run_worker(settings: Settings) -> None:
    """``mirrorline worker``: run queued jobs, ``WORKERS`` at a time, until SIGTERM/SIGINT
    (then the running jobs finish first). When the database goes away the queue worker
    stops; it is started again every few seconds until the database is back."""
    from service import logs
    from service.jobs import JobManager
    from service.metrics import Metrics
    from service.pgstore import PgStore
    from service.s3audio import open_audio_store

    assert settings.database_url is not None
    store = PgStore(
        settings.database_url,
        worker_stalled_s=settings.worker_stalled_s,
        audio=open_audio_store(settings.audio_store_url),
    )
    jobs = JobManager(settings, store, Metrics(store.counts))
    await jobs.start()
    app = App(connector=PsycopgConnector(conninfo=settings.database_url))

    async def run(job_id: str) -> None:
        logs.request_id_var.set(f"job:{job_id}")
        await jobs.run_queued(job_id)

    app.task(name=TASK, queue=QUEUE, retry=RETRY, pass_context=False)(run)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reaper = asyncio.create_task(_requeue_stalled(app, settings, stop), name="stalled")
    log.info("worker node started", extra={"workers": settings.workers})
    try:
        async with app.open_async():
            while not stop.is_set():
                worker = asyncio.create_task(
                    app.run_worker_async(
                        queues=[QUEUE],
                        concurrency=settings.workers,
                        name="mirrorline-worker",
                        install_signal_handlers=False,
                        update_heartbeat_interval=settings.worker_heartbeat_s,
                        stalled_worker_timeout=settings.worker_stalled_s,
                        delete_jobs="successful",
                    )
                )
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({worker, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    worker.cancel()  # graceful: running jobs finish first
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker
                stopped.cancel()
                if not stop.is_set():
                    log.warning("queue worker stopped (database unreachable?); restarting")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=settings.worker_heartbeat_s)
    finally:
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper
        await jobs.stop()
        store.close()
        log.info("worker node stopped")


async def _requeue_stalled(app: App, settings: Settings, stop: asyncio.Event) -> None:
    """Put back the entries held by workers silent for ``WORKER_STALLED_S``."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.worker_heartbeat_s)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=settings.worker_stalled_s
            )
            for entry in stalled:
                log.warning(
                    "job re-queued: its worker stopped answering",
                    extra={"job_id": entry.task_kwargs.get("job_id"), "entry": entry.id},
                )
                await app.job_manager.retry_job(entry)
        except Exception as exc:  # the database is away: try again next round
            log.warning("stalled-job check failed: %s: %s", exc.__class__.__name__, exc)
