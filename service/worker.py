"""What runs inside the analysis worker processes (spawned, so only this module is imported).

Functions here return plain tuples of strings so nothing but text crosses the process
boundary; they never raise for bad input.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sqlite3
import time
import traceback
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mirrorline.worker")

Outcome = tuple[str, str, str]
"""("ok", report_json, windows_csv) or ("error", code, message) or ("internal", msg, trace)."""

JobOutcome = tuple[str, str, str, bytes | None]
"""An :data:`Outcome` and, when a job completes, the ZIP of its mirroring evidence."""


PROGRESS_INTERVAL_S = 1.0
"""Least time between two progress writes of one job, s."""

PROGRESS_CAP = 0.99
"""Highest progress a job shows while ``processing``: 1.0 means completed (the last stage,
pitch paths and mirroring statistics, runs after the last block is decoded)."""


def progress_fraction(done_s: float, total_s: float | None) -> float | None:
    """``done_s / total_s`` clipped to [0, PROGRESS_CAP]; None when the total is unknown."""
    if total_s is None or not math.isfinite(total_s) or total_s <= 0 or not math.isfinite(done_s):
        return None
    return min(max(done_s / total_s, 0.0), PROGRESS_CAP)


class ProgressWriter:
    """``on_progress`` callback that writes a job's progress into the job database.

    The first report is written at once, later ones at most every ``interval_s`` (the
    skipped ones are simply dropped: the next write carries the newer value). Writes use
    their own short-lived connection with a ``timeout_s`` lock wait; a failed write (locked
    or missing database, deleted job) is dropped, never raised, so progress can neither
    fail nor stall an analysis.
    """

    def __init__(
        self,
        db_path: str,
        job_id: str,
        *,
        interval_s: float = PROGRESS_INTERVAL_S,
        timeout_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db_path = db_path
        self.job_id = job_id
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.last_at: float | None = None
        self.writes = 0
        self._db: Any = None  # sqlite3 or psycopg connection

    def __call__(self, done_s: float, total_s: float | None) -> None:
        now = self.clock()
        if self.last_at is not None and now - self.last_at < self.interval_s:
            return
        self.last_at = now
        try:
            from service.store import PROGRESS_SQL

            sql = PROGRESS_SQL
            if self._db is None and self.db_path.startswith(("postgresql://", "postgres://")):
                import psycopg  # multi-node: the job's row is in PostgreSQL

                self._db = psycopg.connect(self.db_path, autocommit=True, connect_timeout=2)
            elif self._db is None:
                self._db = sqlite3.connect(
                    self.db_path, timeout=self.timeout_s, isolation_level=None
                )
                self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per write
            if not isinstance(self._db, sqlite3.Connection):
                sql = PROGRESS_SQL.replace("?", "%s")
            processed_s = round(max(float(done_s), 0.0), 3)
            fraction = progress_fraction(done_s, total_s)
            progress = None if fraction is None else round(fraction, 4)
            self._db.execute(sql, (progress, processed_s, self.job_id))
            self.writes += 1
        except Exception as exc:  # progress is best effort
            log.debug("progress not written: %s: %s", exc.__class__.__name__, exc)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def analyze_file(
    path: str,
    config_json: str,
    name: str | None,
    max_duration_s: float | None,
    progress_db: str | None = None,
    job_id: str | None = None,
) -> JobOutcome:
    """Analyse one stored upload; input errors come back as ``("error", code, message)``.

    With ``progress_db`` and ``job_id``, the job's progress is written into that SQLite
    database while the analysis runs (see ``ProgressWriter``). With ``job_id`` the outcome
    also carries the ZIP of the call's mirroring evidence (``GET .../evidence.zip``);
    without (a synchronous analysis) that is None.
    """
    writer = None if progress_db is None or job_id is None else ProgressWriter(progress_db, job_id)
    try:
        from dsp.errors import InputError
        from models.params import AnalysisConfig
        from service.analysis import (
            build_report,
            call_evidence,
            evidence_zip,
            measure_source,
            windows_csv,
        )
        from service.stage1_ahead import call_stage1

        config = AnalysisConfig.model_validate_json(config_json)
        try:
            result = measure_source(
                path,
                config,
                max_duration_s=max_duration_s,
                on_progress=writer,
                workers=_threads,
                kept=call_stage1(Path(path), config.to_params()),
            )
            report = build_report(result, config, source=name)
            # a job keeps its evidence; a synchronous analysis answers with the report alone
            evidence = None if job_id is None else evidence_zip(call_evidence(result))
        except InputError as exc:
            from service.problems import without_path

            return ("error", exc.code, without_path(exc.message, path), None)
        return ("ok", report.model_dump_json(), windows_csv(report), evidence)
    except Exception as exc:  # a bug: reported as 500 / job failed "internal"
        return ("internal", f"{exc.__class__.__name__}: {exc}", traceback.format_exc(), None)
    finally:
        if writer is not None:
            writer.close()


def _warm_up_wav(seconds: float = 3.0, rate_hz: int = 8000) -> bytes:
    """A small stereo WAV of alternating harmonic bursts (speech-like enough to run it all)."""
    n = int(seconds * rate_hz)
    frames = bytearray()
    for i in range(n):
        t = i / rate_hz
        phase = int(t / 0.5) % 2
        env = math.sin(math.pi * ((t % 0.5) / 0.5)) ** 2
        value = (
            0.3
            * env
            * sum(math.sin(2 * math.pi * k * (140 if phase else 210) * t) / k for k in (1, 2, 3))
        )
        left = int(8000 * value) if phase == 0 else 0
        right = int(8000 * value) if phase == 1 else 0
        frames += left.to_bytes(2, "little", signed=True) + right.to_bytes(2, "little", signed=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


# Threads per analysis in this worker process (None: the pipeline's default), set by warm_up.
_threads: int | None = None


def die_with_parent(parent_pid: int, *, poll_s: float = 0.5) -> None:
    """End this worker process when ``parent_pid`` (the server) ends, kill -9 included.

    On Linux the kernel sends SIGKILL at once (``PR_SET_PDEATHSIG``); everywhere a daemon
    thread also watches for the worker being re-parented and exits. Without this a killed
    server left its ~200 MB workers (and so the resource tracker) running, one of them
    still analysing, and every restart stacked more.
    """
    import ctypes
    import os
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError) as exc:
            log.warning("parent-death signal not set: %s", exc)
    if os.getppid() != parent_pid:  # the server died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def warm_up(threads: int | None = None, parent_pid: int | None = None, nice: int = 0) -> None:
    """Process-pool initializer: tie this worker's life to the server's (``parent_pid``),
    lower its priority by ``nice`` (settings.analysis_nice: live events and the API go
    first on a busy machine), import the pipeline and run it once (JIT, caches).

    ``threads`` (settings.threads) is kept for this process's analyses. Never raises: a
    failing initializer would break the whole pool.
    """
    global _threads
    _threads = threads
    if parent_pid is not None:
        die_with_parent(parent_pid)
    if nice > 0 and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(nice)
    try:
        from models.params import AnalysisConfig
        from service.analysis import analyze_source

        analyze_source(
            _warm_up_wav(), AnalysisConfig.model_validate({"window_s": 1.0, "hop_s": 1.0})
        )
    except Exception as exc:
        log.warning("analysis warm-up failed: %s: %s", exc.__class__.__name__, exc)


def ping() -> int:
    """A no-op task: submitting a few makes the pool start (and warm) its processes."""
    import os
    import time

    time.sleep(0.2)  # hold this worker so the next ping starts (and warms) another
    return os.getpid()
