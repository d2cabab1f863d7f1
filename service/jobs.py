"""Analysis jobs: a process pool, a dispatcher over the SQLite queue, recovery, expiry.

- ``WORKERS`` analyses run at once, each in a spawned worker process; synchronous requests
  and jobs share those slots (a waiting synchronous request goes first: it holds a
  connection open).
- Jobs are rows in SQLite: ``queued -> processing -> completed | failed``. At start-up a job
  left ``processing`` by a crash or kill is re-queued if its audio is still stored and it has
  attempts left, else failed with ``job.interrupted``. A graceful shutdown re-queues running
  jobs without counting the attempt.
- While a job runs, its worker process writes its progress (decoded fraction of the call)
  into the job's row at most every ``worker.PROGRESS_INTERVAL_S``; completion sets 1.0.
- Uploaded audio lives in ``DATA_DIR/audio`` until analysed, then is deleted unless the job
  asked for ``keep_audio``; expired jobs (``RESULT_TTL_S`` after they finished) are swept.
- Multi-node (``DATABASE_URL``): the store is PostgreSQL (``service.pgstore``), nothing is
  recovered or dispatched here; ``mirrorline worker`` nodes get jobs from the task queue
  (``service.queue``) and run each through :meth:`JobManager.run_queued`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from service import logs, stage1_ahead, worker
from service.metrics import Metrics
from service.problems import Problem
from service.settings import Settings
from service.store import Job, JobStore, audio_in_db
from service.webhooks import WebhookSender, event_body

log = logging.getLogger("mirrorline.jobs")


class Slots:
    """``capacity`` analysis slots; synchronous requests wait in line, ahead of jobs."""

    def __init__(self, capacity: int, max_waiters: int) -> None:
        self.capacity = capacity
        self.max_waiters = max_waiters
        self.running = 0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.on_free: asyncio.Event = asyncio.Event()

    @property
    def free(self) -> bool:
        return self.running < self.capacity and not self.waiters

    def try_acquire(self) -> bool:
        if self.free:
            self.running += 1
            return True
        return False

    async def acquire(self, retry_after_s: int) -> None:
        """Take a slot, waiting in line; refuse (503 server.busy) when the line is full."""
        if self.try_acquire():
            return
        if len(self.waiters) >= self.max_waiters:
            raise Problem(
                "server.busy",
                f"all {self.capacity} analysis slots are busy and {len(self.waiters)} requests "
                "are waiting; retry later or use POST /v1/analyses",
                headers={"Retry-After": str(retry_after_s)},
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(future)
            raise

    def release(self) -> None:
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_result(None)  # hand the slot over: running stays the same
                return
        self.running -= 1
        self.on_free.set()


def _terminate_pool(executor: ProcessPoolExecutor) -> None:
    processes = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


class JobManager:
    """Owns the worker pool, the job dispatcher, the expiry sweep and the webhook sender."""

    def __init__(self, settings: Settings, store: JobStore, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.audio_dir = settings.data_dir / "audio"
        self.upload_dir = settings.data_dir / "uploads"
        self.executor: ProcessPoolExecutor | None = None
        # multi-node (DATABASE_URL): jobs run on `mirrorline worker` nodes (service.queue),
        # fed by the task queue; this node keeps its pool for synchronous analyses
        self.multi_node = settings.database_url is not None
        self.slots = Slots(settings.workers, settings.max_queue)
        self.ready = False
        self.stopping = False
        self.webhooks = WebhookSender(
            store,
            secret=settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
            on_attempt=lambda result: metrics.webhooks.labels(result).inc(),
        )
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._running_jobs: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.settings.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.warm_up,
            initargs=(self.settings.threads, os.getpid(), self.settings.analysis_nice),
        )

    async def start(self) -> None:
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        if not self.multi_node:  # other nodes' running jobs are not ours to recover
            self._recover()
        self._remove_orphans()
        self.executor = self._new_executor()
        self.slots.on_free = self._wake
        self._wake.set()  # jobs queued before this start (recovered, or never run) go first
        self.webhooks.start()
        self._tasks = [
            asyncio.create_task(self._warm(), name="warm-up"),
            asyncio.create_task(self._sweep_loop(), name="sweeper"),
        ]
        if not self.multi_node:
            self._tasks.append(asyncio.create_task(self._dispatch(), name="dispatcher"))

    async def stop(self) -> None:
        self.stopping = True
        for job_id in list(self._running_jobs):
            self.store.requeue(job_id, refund_attempt=True)
            log.info("job re-queued at shutdown", extra={"job_id": job_id})
        if self.executor is not None:
            _terminate_pool(self.executor)
        for task in [*self._tasks, *self._running_jobs.values()]:
            task.cancel()
        for task in [*self._tasks, *self._running_jobs.values()]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.webhooks.stop()

    async def _warm(self) -> None:
        """Start every worker process (each runs the warm-up initializer), then go ready."""
        assert self.executor is not None
        started = time.perf_counter()
        futures = [self.executor.submit(worker.ping) for _ in range(self.settings.workers)]
        try:
            pids = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except BrokenProcessPool:
            log.error("worker pool failed to start")
            return
        self.ready = True
        log.info(
            "workers ready",
            extra={"workers": len(set(pids)), "warm_up_s": round(time.perf_counter() - started, 2)},
        )

    def _recover(self) -> None:
        """Re-queue or fail the jobs a previous process left ``processing``."""
        for job in self.store.by_status("processing"):
            audio_ok = job.audio_path is not None and Path(job.audio_path).exists()
            if audio_ok and job.attempts < self.settings.max_job_attempts:
                self.store.requeue(job.id, refund_attempt=False)
                log.warning("interrupted job re-queued", extra={"job_id": job.id})
            else:
                reason = (
                    "its audio is no longer stored"
                    if not audio_ok
                    else f"it was interrupted {job.attempts} times"
                )
                self._finish_failed(
                    job,
                    "job.interrupted",
                    f"the server stopped while analysing this call and {reason}; "
                    "please submit it again",
                )

    def _remove_orphans(self) -> None:
        """Delete audio no job refers to (uploads cut short by a crash, leftovers)."""
        wanted = self.store.audio_paths()
        names = {Path(p).name for p in wanted}
        for folder in (self.audio_dir, self.upload_dir):
            for path in folder.iterdir():
                if str(path) not in wanted and not stage1_ahead.is_part_of(path, names):
                    path.unlink(missing_ok=True)

    async def compute_ahead(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a small piece of a live stream's analysis ahead of its job (a finished block's
        stage 1, ``service.stage1_ahead``) in the analysis processes, outside the job
        slots; None in multi-node mode (the job runs on another machine)."""
        if self.executor is None or self.multi_node:
            return None
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    # -- synchronous analyses -------------------------------------------------------------

    async def analyze_now(
        self, path: Path, config_json: str, name: str | None, max_duration_s: float
    ) -> worker.Outcome:
        """Run one analysis in the pool (waiting for a slot) and return its outcome."""
        await self.slots.acquire(self.settings.retry_after_s)
        started = time.perf_counter()
        try:
            outcome = await self._submit(str(path), config_json, name, max_duration_s, None)
        finally:
            self.slots.release()
        self.metrics.analyses.labels("sync", outcome[0]).inc()
        self.metrics.analysis_seconds.labels("sync").observe(time.perf_counter() - started)
        return outcome[:3]

    async def _submit(
        self,
        path: str,
        config_json: str,
        name: str | None,
        max_duration_s: float,
        job_id: str | None,
    ) -> worker.JobOutcome:
        """Run one analysis in the pool; with ``job_id`` the worker records its progress
        and returns the call's mirroring evidence too."""
        assert self.executor is not None
        executor = self.executor
        progress_db = None if job_id is None else str(self.store.path)
        try:
            future = executor.submit(
                worker.analyze_file, path, config_json, name, max_duration_s, progress_db, job_id
            )
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            if self.stopping:
                raise
            if self.executor is executor:
                log.error("a worker process died; restarting the pool")
                _terminate_pool(executor)
                self.executor = self._new_executor()
            return (
                "internal",
                "the analysis worker process died (out of memory or killed)",
                "BrokenProcessPool",
                None,
            )

    # -- jobs -----------------------------------------------------------------------------

    def check_queue(self) -> None:
        """Refuse new jobs (503) when ``MAX_QUEUE`` jobs are already waiting."""
        queued = self.store.count("queued")
        if queued >= self.settings.max_queue:
            raise Problem(
                "server.busy",
                f"{queued} analyses are already queued (MIRRORLINE_MAX_QUEUE); retry later",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )

    def queue_stats(self) -> dict[str, float]:
        """Queue depth, oldest waiting job's age (s) and workers alive, for /metrics."""
        stats = self.store.queue_stats()
        if not self.multi_node:
            stats["workers"] = self.settings.workers if self.ready and not self.stopping else 0
        return stats

    def wake(self) -> None:
        """A job was queued (multi-node: the queue entry went in with the job's row)."""
        self._wake.set()

    async def _dispatch(self) -> None:
        while not self.stopping:
            await self._wake.wait()
            self._wake.clear()
            while not self.stopping and self.executor is not None:
                if not self.slots.try_acquire():
                    break
                job = self.store.claim_next()
                if job is None:
                    self.slots.release()
                    self._wake.clear()  # release() set it; nothing to run though
                    break
                self._running_jobs[job.id] = asyncio.create_task(
                    self._run(job), name=f"job-{job.id}"
                )

    async def _run(self, job: Job) -> None:
        logs.request_id_var.set(f"job:{job.id}")  # this task's own context: its log lines
        started = time.perf_counter()
        log.info("job started", extra={"job_id": job.id, "attempt": job.attempts})
        try:
            if job.audio_path is None or not Path(job.audio_path).exists():
                outcome: worker.JobOutcome = ("internal", "the job's audio is missing", "", None)
            else:
                outcome = await self._submit(
                    job.audio_path,
                    _config_json(job.config),
                    job.filename,
                    self.settings.max_duration_s,
                    job.id,
                )
        except (asyncio.CancelledError, BrokenProcessPool):
            return  # shutting down: stop() re-queued the job
        finally:
            self._running_jobs.pop(job.id, None)
            if not self.stopping:
                self.slots.release()
        self.metrics.analyses.labels("job", outcome[0]).inc()
        self.metrics.analysis_seconds.labels("job").observe(time.perf_counter() - started)
        current = self.store.get(job.id)
        if current is None:  # deleted while running
            self._drop_audio(job, force=True)
            return
        if outcome[0] == "ok":
            stored = self.store.complete(
                job.id,
                outcome[1],
                outcome[2],
                ttl_s=self.settings.result_ttl_s,
                evidence=outcome[3],
            )
            if not stored:  # another run of this job (multi-node) stored it first
                log.info("job result already stored", extra={"job_id": job.id})
                return
            self._drop_audio(job)
            log.info("job completed", extra={"job_id": job.id})
            self._notify(job, "completed", None)
        elif outcome[0] == "error":
            self._finish_failed(job, outcome[1], outcome[2])
        else:
            log.error(
                "job failed: internal error",
                extra={"job_id": job.id, "error": outcome[1], "trace": outcome[2]},
            )
            self._finish_failed(
                job, "internal", f"analysis failed unexpectedly; please report job {job.id}"
            )

    async def run_queued(self, job_id: str) -> None:
        """Run one job the task queue handed this worker node (multi-node): claim it, copy
        its audio out of the database, analyse, store the result once and notify.

        At-least-once delivery makes this run again for a job already run (its worker
        presumed dead, or killed after storing the result): a finished job is only
        notified again, under the same webhook-id; a job interrupted too often fails.
        """
        from dataclasses import replace

        from service.pgstore import PgStore

        store = self.store
        assert isinstance(store, PgStore)
        job = store.claim(job_id)
        if job is None:
            self._notify_again(job_id)
            return
        if job.attempts > self.settings.max_job_attempts:
            self._finish_failed(
                job,
                "job.interrupted",
                f"the analysis of this call was interrupted {job.attempts - 1} times (a worker "
                "stopped or was lost); please submit it again",
            )
            return
        local = self.upload_dir / f"{job.id}{Path(job.filename or '').suffix[:16]}"
        try:
            if not store.read_audio(job.id, local):
                self._finish_failed(job, "job.interrupted", "the job's audio is no longer stored")
                return
            await self.slots.acquire(self.settings.retry_after_s)
            # the local copy is deleted below; _run's _drop_audio deletes the stored one
            await self._run(replace(job, audio_path=str(local)))
        finally:
            local.unlink(missing_ok=True)

    def _notify_again(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status not in ("completed", "failed"):
            return
        error = None
        if job.status == "failed":
            error = {"code": job.error_code or "", "message": job.error_message or ""}
        self._notify(job, job.status, error)

    def _finish_failed(self, job: Job, code: str, message: str) -> None:
        if self.store.fail(job.id, code, message, ttl_s=self.settings.result_ttl_s):
            log.info("job failed", extra={"job_id": job.id, "code": code})
            self._drop_audio(job)
            self._notify(job, "failed", {"code": code, "message": message})

    def _drop_audio(self, job: Job, *, force: bool = False) -> None:
        if job.audio_path is not None and (force or not job.keep_audio):
            _unlink_local(job.audio_path)
            if not force:
                self.store.forget_audio(job.id)

    def _notify(self, job: Job, status: str, error: dict[str, str] | None) -> None:
        if job.callback_url is None:
            return
        body = event_body(job_id=job.id, status=status, result_url=result_url(job), error=error)
        self.webhooks.enqueue(job.id, status, job.callback_url, body)

    def delete(self, job_id: str, owner: str) -> bool:
        """Delete a job's row, result, webhooks and stored audio (even while it runs)."""
        job = self.store.get(job_id, owner=owner)
        if job is None:
            return False
        self.store.delete(job_id)
        if job.audio_path is not None and job.status != "processing":
            _unlink_local(job.audio_path)
        # a processing job's audio is removed when its analysis returns (see _run)
        return True

    async def _sweep_loop(self) -> None:
        while not self.stopping:
            try:
                self.sweep()
            except Exception:
                log.exception("expiry sweep failed")
            await asyncio.sleep(self.settings.sweep_interval_s)

    def sweep(self) -> int:
        """Delete the jobs whose results expired (and any audio kept for them)."""
        expired = self.store.expired(time.time())
        for job in expired:
            self.store.delete(job.id, scrub=False)
            if job.audio_path is not None:
                _unlink_local(job.audio_path)
        if expired:
            self.store.scrub()  # once for the batch: nothing of them stays on disk
            log.info("expired jobs deleted", extra={"count": len(expired)})
        return len(expired)


def _unlink_local(audio_path: str) -> None:
    """Delete a job's audio file and what was computed ahead of it (audio kept in the
    database goes with its rows)."""
    if not audio_in_db(audio_path):
        Path(audio_path).unlink(missing_ok=True)
        stage1_ahead.remove(Path(audio_path))


def _config_json(config: dict[str, Any]) -> str:
    import json

    return json.dumps(config)


def result_url(job: Job) -> str:
    return f"{job.base_url.rstrip('/')}/v1/analyses/{job.id}"
