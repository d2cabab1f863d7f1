"""The processes that compute live events (``MIRRORLINE_LIVE_WORKERS``).

Live DSP is numpy on short arrays, much of it Python-bound: in threads of the server
process it would hold the GIL that the WebSocket traffic of every stream needs. It runs
in its own processes instead, a batch of streams per call
(:func:`service.live_dsp.measure_windows`: one pitch search for the whole batch).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from service.live import LiveAnalyzer
from service.live_dsp import LiveWork, WindowMeasures, measure_windows


def _warm_up() -> None:
    analyzer = LiveAnalyzer(8000, 0)
    analyzer.feed(np.zeros((2, 8000), dtype=np.int16))
    measure_windows([analyzer.snapshot()])


class LivePool:
    """``workers`` processes, started with the first stream (:meth:`start`: that stream's
    first events wait ~1 s for them); a broken pool is replaced."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def _get(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm_up,
            )
        return self._executor

    def start(self) -> None:
        """Start the processes now if they are not running, in the background (they import
        the DSP, then wait)."""
        if self._executor is None:
            executor = self._get()
            for _ in range(self.workers):
                executor.submit(int)

    async def measure(self, works: Sequence[LiveWork]) -> list[WindowMeasures]:
        executor = self._get()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, measure_windows, list(works)
            )
        except BrokenProcessPool:
            self._executor = None  # a worker died: the next batch starts new ones
            executor.shutdown(wait=False, cancel_futures=True)
            raise

    def shutdown(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
