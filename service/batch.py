"""A batch of calls (``mirrorline analyze calls/``): every call measured, then each call's
mirroring tested against the other calls as sham partners, then each call's page drawn.

All three steps run in a :class:`BatchPool` of ``jobs`` worker processes (one: no extra
process, the steps run here one call at a time). Only small things cross the process
boundary: a path and the settings go out; a call's report without mirroring and its sham
data (IPU values and window series) come back, never its frame tracks. So memory is about
``jobs`` calls' worth, and the reports are the same whatever ``jobs`` is.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dsp import mirroring as mirror_metrics
from dsp import pipeline
from models.params import AnalysisConfig
from models.report import Report
from service.analysis import _report, _with_skipped, with_measured_mirroring


def default_jobs() -> int:
    """Calls a batch analyses at once by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class BatchPool:
    """``jobs`` worker processes (see :func:`_context`) or, for one job, this process."""

    def __init__(self, executor: Executor | None, jobs: int) -> None:
        self.executor = executor
        self.jobs = jobs

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """``fn`` over the iterables, results in order (lazily, as they come)."""
        if self.executor is None:
            return map(fn, *iterables)
        return self.executor.map(fn, *iterables)


def _context() -> multiprocessing.context.BaseContext:
    """Fork on Linux: the workers start with numpy, the pipeline and matplotlib already
    imported (spawn costs each ~1.5 CPU s of imports); spawn elsewhere. The parent runs no
    thread of its own when the pool forks (the pool forks all its workers at once, first)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


@contextmanager
def batch_pool(jobs: int, n_calls: int) -> Iterator[BatchPool]:
    """A pool of ``min(jobs, n_calls)`` processes, ended (and its queued work dropped) on exit."""
    jobs = max(1, min(jobs, n_calls))
    if jobs == 1:
        yield BatchPool(None, 1)
        return
    import service.report_page  # noqa: F401  (imported once here, shared by forked workers)

    executor = ProcessPoolExecutor(jobs, mp_context=_context())
    try:
        yield BatchPool(executor, jobs)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _measure_call(
    path: Path, config: AnalysisConfig, workers: int | None
) -> tuple[Report, mirror_metrics.ShamCall]:
    """Step 1 for one call: its report without mirroring and its sham data (the frame
    tracks stay behind, in the process that made them)."""
    result = pipeline.analyze(path, config.to_params(), workers=workers, mirror=False)
    return _report(result, config, source=path.name), result.as_sham()


def _mirror_calls(
    calls: Sequence[mirror_metrics.ShamCall], indices: Sequence[int]
) -> list[mirror_metrics.MirroringResult]:
    """Step 2 for the calls at ``indices``: each against all the others."""
    return [
        pipeline.measure_mirroring(calls[i], shams=[*calls[:i], *calls[i + 1 :]]) for i in indices
    ]


def analyze_batch(
    paths: Sequence[Path],
    config: AnalysisConfig,
    *,
    pool: BatchPool,
    progress: bool = False,
    workers: int | None = None,
) -> list[Report]:
    """Analyse several calls; each call's mirroring is tested against the others as shams.

    ``workers``: threads for stage 1 of each call (default: the pipeline's with one job;
    one with several, whose processes already keep the cores busy).
    """
    from tqdm import tqdm

    threads = workers if workers is not None or pool.jobs == 1 else 1
    n_calls = len(paths)
    measured = pool.map(_measure_call, paths, [config] * n_calls, [threads] * n_calls)
    reports: list[Report] = []
    calls: list[mirror_metrics.ShamCall] = []
    for report, call in tqdm(
        measured, total=n_calls, desc="analysing", unit="call", disable=not progress, leave=False
    ):
        reports.append(report)
        calls.append(call)
    # A few chunks per process (they end close together), each sent with every call's sham
    # data once: not once per call.
    n_chunks = n_calls if pool.jobs == 1 else min(n_calls, 4 * pool.jobs)
    chunks = [list(range(k, n_calls, n_chunks)) for k in range(n_chunks)]
    results = pool.map(_mirror_calls, [calls] * n_chunks, chunks)
    mirroring: dict[int, mirror_metrics.MirroringResult] = {}
    for chunk, found in tqdm(
        zip(chunks, results, strict=True),
        total=n_chunks,
        desc="mirroring",
        disable=not progress,
        leave=False,
    ):
        mirroring.update(zip(chunk, found, strict=True))
    return [
        _with_skipped(with_measured_mirroring(report, mirroring[i]))
        for i, report in enumerate(reports)
    ]


def render_pages(reports: Sequence[Report], pool: BatchPool) -> Iterator[str]:
    """Each report's page (``service.report_page``), in order."""
    from service.report_page import render_report_html

    return pool.map(render_report_html, reports)
