"""Live streams: audio in from a WebSocket, live events out, an analysis job at the end.

One :class:`LiveStream` per call. The WebSocket route (``service.routes.streams``) parses
the platform's messages and pushes frames; this module places them
(:class:`service.jitter.JitterBuffer`), appends the released stereo audio to a WAV file
(16-bit PCM at the stream's rate, channel 0 and 1 as the protocol defines them) and to the
live window (:class:`service.live.LiveAnalyzer`), which computes an event every
``LIVE_INTERVAL_S`` of audio: the registry gathers the streams whose event is due and
computes them as one batch in a worker process (:class:`service.live_pool.LivePool`), at
most ``LIVE_WORKERS`` batches at a time. When the stream ends (stop, disconnect, idle
timeout, too long, a bad message) the WAV becomes an ordinary analysis job: the worker
analyses it exactly as it would the same file uploaded to ``POST /v1/analyses``.

Stream records live in memory (a restart forgets them; their analyses stay in the job
database).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from models.params import AnalysisConfig
from service import live_mirroring, stage1_ahead
from service.jitter import JitterBuffer
from service.jobs import JobManager
from service.live import CueThresholds, LiveAnalyzer
from service.live_pool import LivePool
from service.metrics import Metrics
from service.settings import Settings
from service.store import JobStore

log = logging.getLogger("mirrorline.streams")

Protocol = Literal["twilio", "audiohook", "raw"]
#: Released audio is written (WAV, live window) in pieces of at least this many seconds: at
#: most this much is added to a live event's latency.
RELEASE_S = 0.1

#: The live scheduler waits this long after an event falls due, for others to join its
#: batch: a batch's pitch search costs about the same for 1 stream as for 30.
LIVE_GATHER_S = 0.02
#: At most this many streams per batch: a batch's events wait for its slowest part, and
#: ~7 ms per stream (bench/live.py) makes a batch of 16 about 0.1 s.
LIVE_BATCH_MAX = 16
#: At its end a stream waits at most this long for the blocks being computed ahead (the
#: job computes again those still queued behind other jobs).
AHEAD_WAIT_S = 2.0

EndReason = Literal["stop", "disconnect", "idle", "too_long", "error", "shutdown"]


class StreamRefused(Exception):
    """A stream that cannot start: ``code`` (problem code) and the WebSocket close code."""

    def __init__(self, code: str, detail: str, close_code: int) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.close_code = close_code


@dataclass
class LiveStream:
    id: str
    owner: str
    protocol: Protocol
    sample_rate_hz: int
    agent_channel: int
    channel_names: tuple[str, str]
    buffer: JitterBuffer
    analyzer: LiveAnalyzer
    spool_path: Path
    spool: wave.Wave_write | None
    spool_file: BinaryIO | None
    interval_samples: int
    release_samples: int
    config: AnalysisConfig  # of the analysis the stream becomes
    started_at: float = field(default_factory=time.time)
    state: Literal["live", "ended"] = "live"
    ended_at: float | None = None
    end_reason: EndReason | None = None
    error: dict[str, str] | None = None
    analysis_id: str | None = None
    callback_url: str | None = None  # the analysis's webhook, as a batch job's
    written: int = 0  # samples per channel in the WAV
    seq: int = 0
    last_event: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    tick_due: bool = False  # a live event is due (computed with the next batch)
    due_since: float = 0.0  # time.monotonic() when it fell due
    computing: bool = False  # in a batch now
    computed: asyncio.Event = field(default_factory=asyncio.Event)  # set after each batch
    next_tick: int = 0
    # finished blocks whose stage 1 is computed ahead of the job (service.stage1_ahead)
    ahead_shape: tuple[int, int] | None = None  # (block length, context) in samples
    ahead_next: int = 0  # the next block to compute
    ahead_offset: int | None = None  # byte offset of the samples in the spool
    ahead_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    blocks_ahead: int = 0  # computed ahead when the job was queued
    mirroring: dict[str, Any] | None = None  # of the call so far (service.live_mirroring)
    mirroring_due_s: float = 0.0  # audio the next measurement waits for
    compute_s: float = 0.0  # its share of the batches' time

    @property
    def audio_s(self) -> float:
        return self.written / self.sample_rate_hz

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        self.seq += 1
        self.last_event = {"event": kind, "seq": self.seq, "stream_id": self.id, **body}
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class StreamRegistry:
    """Every live (and recently ended) stream of this server."""

    def __init__(
        self, settings: Settings, jobs: JobManager, store: JobStore, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.store = store
        self.metrics = metrics
        self.streams: dict[str, LiveStream] = {}
        self._frame_counters: dict[str, Any] = {}
        self.live_pool = LivePool(settings.live_workers)
        self._due = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()  # live mirroring measurements
        self._free_workers = asyncio.Semaphore(settings.live_workers)
        self._scheduler: asyncio.Task[None] | None = None
        self.thresholds = CueThresholds(
            hold_s=settings.cue_hold_s,
            pace_ratio=settings.cue_pace_ratio,
            loudness_db=settings.cue_loudness_db,
            monologue_s=settings.cue_monologue_s,
            silence_s=settings.cue_silence_s,
            interruption_overlap_s=settings.cue_interruption_overlap_s,
        )

    @property
    def live_count(self) -> int:
        return sum(1 for s in self.streams.values() if s.state == "live")

    def get(self, stream_id: str, owner: str) -> LiveStream | None:
        self._forget_old()
        stream = self.streams.get(stream_id)
        if stream is None or stream.owner != owner:
            return None
        return stream

    def _forget_old(self) -> None:
        limit = time.time() - self.settings.stream_keep_s
        for sid, stream in list(self.streams.items()):
            if stream.state == "ended" and (stream.ended_at or 0) < limit:
                del self.streams[sid]

    def open(
        self,
        stream_id: str,
        owner: str,
        protocol: Protocol,
        *,
        sample_rate_hz: int,
        agent_channel: int,
        channel_names: tuple[str, str],
        callback_url: str | None = None,
    ) -> LiveStream:
        """Start a stream, or raise :class:`StreamRefused` (id live already, server full)."""
        self._forget_old()
        if self.jobs.stopping:
            raise StreamRefused("server.not_ready", "the server is stopping", 4503)
        current = self.streams.get(stream_id)
        if current is not None and current.state == "live":
            raise StreamRefused("stream.conflict", f"stream {stream_id} is already live", 4409)
        if self.live_count >= self.settings.stream_max_concurrent:
            raise StreamRefused(
                "server.busy",
                f"{self.live_count} streams are live (MIRRORLINE_STREAM_MAX_CONCURRENT)",
                4503,
            )
        spool_path = self.jobs.upload_dir / f"stream-{uuid.uuid4().hex}.wav"
        spool_file = open(spool_path, "wb")  # noqa: SIM115 (closed when the stream ends)
        spool = wave.open(spool_file, "wb")  # noqa: SIM115 (closed when the stream ends)
        spool.setnchannels(2)
        spool.setsampwidth(2)
        spool.setframerate(sample_rate_hz)
        interval = max(1, int(round(self.settings.live_interval_s * sample_rate_hz)))
        config = AnalysisConfig.model_validate({"agent_channel": agent_channel})
        stream = LiveStream(
            id=stream_id,
            owner=owner,
            protocol=protocol,
            sample_rate_hz=sample_rate_hz,
            agent_channel=agent_channel,
            channel_names=channel_names,
            buffer=JitterBuffer(
                2,
                delay_samples=int(round(self.settings.stream_jitter_ms / 1000 * sample_rate_hz)),
                max_jump_samples=int(round(self.settings.stream_max_gap_s * sample_rate_hz)),
            ),
            analyzer=LiveAnalyzer(
                sample_rate_hz,
                agent_channel,
                window_s=self.settings.live_window_s,
                thresholds=self.thresholds,
            ),
            spool_path=spool_path,
            spool=spool,
            spool_file=spool_file,
            config=config,
            ahead_shape=None
            if self.jobs.multi_node
            else stage1_ahead.geometry(sample_rate_hz, config.to_params()),
            interval_samples=interval,
            callback_url=callback_url,
            release_samples=int(RELEASE_S * sample_rate_hz),
            next_tick=interval,
            mirroring_due_s=self.settings.live_mirroring_s,
        )
        self.streams[stream_id] = stream
        self.live_pool.start()  # with the first stream: a server without streams runs none
        if self._scheduler is None or self._scheduler.done():
            self._scheduler = asyncio.create_task(self._live_loop(), name="live-events")
        log.info(
            "stream started",
            extra={"stream_id": stream_id, "protocol": protocol, "sample_rate_hz": sample_rate_hz},
        )
        return stream

    # -- audio ----------------------------------------------------------------------------

    def push(self, stream: LiveStream, channel: int, start: int, samples: npt.ArrayLike) -> str:
        """Place one frame; returns what happened to it (see ``JitterBuffer.push``)."""
        result = stream.buffer.push(channel, start, samples)
        counter = self._frame_counters.get(result)
        if counter is None:
            counter = self._frame_counters[result] = self.metrics.stream_frames.labels(result)
        counter.inc()
        return result

    def release(self, stream: LiveStream, *, final: bool = False) -> bool:
        """Write what the buffer releases, in pieces of at least RELEASE_S (each costs a WAV
        write and a window write; per 20-ms frame they were the largest cost of ingest);
        False once the stream is over its length limit."""
        if not final and stream.buffer.ready_samples < stream.release_samples:
            return True
        block = stream.buffer.flush() if final else stream.buffer.release()
        limit = int(self.settings.max_duration_s * stream.sample_rate_hz)
        room = max(0, limit - stream.written)
        if block.shape[1] > room:
            block = block[:, :room]
        if block.shape[1] and stream.spool is not None:
            # raw: the header's length is written once, at close (not at every frame)
            stream.spool.writeframesraw(np.ascontiguousarray(block.T).astype("<i2").tobytes())
            stream.written += block.shape[1]
            if stream.ahead_shape is not None:
                self._compute_ahead(stream, stream.ahead_shape)
            stream.analyzer.feed(block)
            if stream.analyzer.fed >= stream.next_tick:
                while stream.next_tick <= stream.analyzer.fed:
                    stream.next_tick += stream.interval_samples
                if not stream.tick_due:
                    stream.tick_due, stream.due_since = True, time.monotonic()
                self._due.set()
        return stream.written < limit

    def _compute_ahead(
        self, stream: LiveStream, shape: tuple[int, int], *, final: bool = False
    ) -> None:
        """Start stage 1 of each block whose audio and right context are now in the spool;
        ``final``: the call ended, so also of its last blocks (with the context there is)."""
        block_len, context = shape
        n_blocks = -(-stream.written // block_len) if final else 0
        if stream.written < (stream.ahead_next + 1) * block_len + context and (
            stream.ahead_next >= n_blocks
        ):
            return
        assert stream.spool_file is not None
        stream.spool_file.flush()
        if stream.ahead_offset is None:
            stream.ahead_offset = stage1_ahead.wav_data(stream.spool_path)[0]
        while (
            stream.written >= (stream.ahead_next + 1) * block_len + context
            or stream.ahead_next < n_blocks
        ):
            n_samples = stream.written if final else None
            task = asyncio.create_task(self._block_ahead(stream, stream.ahead_next, n_samples))
            stream.ahead_tasks.add(task)
            task.add_done_callback(stream.ahead_tasks.discard)
            stream.ahead_next += 1

    async def _block_ahead(self, stream: LiveStream, index: int, n_samples: int | None) -> None:
        try:
            done = await self.jobs.compute_ahead(
                stage1_ahead.compute_block,
                str(stream.spool_path),
                stream.ahead_offset,
                stream.sample_rate_hz,
                index,
                stream.config.to_params(),
                n_samples,
            )
        except Exception:  # the job computes the block itself
            log.warning("stage 1 ahead failed", exc_info=True, extra={"stream_id": stream.id})
            return
        if n_samples is not None:  # the call ended: no more live mirroring
            return
        every_s = self.settings.live_mirroring_s
        block_s = stream.config.to_params().block_s
        covered_s = (index + 1) * block_s
        if not done or every_s <= 0 or stream.state != "live" or covered_s < stream.mirroring_due_s:
            return
        stream.mirroring_due_s = covered_s + every_s
        # not one of ahead_tasks: the end of the stream does not wait for it
        task = asyncio.create_task(self._mirroring_so_far(stream, index + 1))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _mirroring_so_far(self, stream: LiveStream, n_blocks: int) -> None:
        try:
            found = await self.jobs.compute_ahead(
                live_mirroring.mirroring_so_far,
                str(stream.spool_path),
                stream.sample_rate_hz,
                n_blocks,
                stream.config.model_dump_json(),
            )
        except Exception:
            if stream.state == "live":  # once ended, its WAV may have become the job's
                log.warning("live mirroring failed", exc_info=True, extra={"stream_id": stream.id})
            return
        if found is not None and (
            stream.mirroring is None or found["as_of_s"] > stream.mirroring["as_of_s"]
        ):
            stream.mirroring = found

    # -- live events ----------------------------------------------------------------------

    async def _live_loop(self) -> None:
        """Whenever events are due and a worker is free: one batch of every due stream that
        is not in a batch already (each computes its newest window only)."""
        while True:
            await self._due.wait()
            await asyncio.sleep(LIVE_GATHER_S)
            await self._free_workers.acquire()
            self._due.clear()
            due = [s for s in self.streams.values() if s.tick_due and not s.computing]
            if not due:
                self._free_workers.release()
                continue
            # at most a worker's share of the live streams, the longest waiting first: one
            # batch of every stream would leave the other workers idle
            due.sort(key=lambda s: s.due_since)
            share = min(LIVE_BATCH_MAX, max(1, -(-self.live_count // self.settings.live_workers)))
            batch = due[:share]
            if len(due) > share:
                self._due.set()  # the rest go to the next free worker
            for stream in batch:
                stream.tick_due, stream.computing = False, True
            task = asyncio.create_task(self._compute(batch))
            task.add_done_callback(lambda _: self._free_workers.release())

    async def _compute(self, batch: list[LiveStream]) -> None:
        works = [s.analyzer.snapshot() for s in batch]
        started = time.perf_counter()
        try:
            found = await self.live_pool.measure(works)
        except Exception:
            log.exception("live measures failed", extra={"streams": len(batch)})
            found = []
        share = (time.perf_counter() - started) / len(batch)
        for stream, measured in zip(batch, found, strict=False):
            stream.compute_s += share
            if measured.end > stream.analyzer.computed_to:
                try:
                    event = stream.analyzer.update(measured)
                    event["mirroring"] = stream.mirroring
                    stream.publish("live", event)
                except Exception:
                    log.exception("live event failed", extra={"stream_id": stream.id})
        for stream in batch:
            stream.computing = False
            computed, stream.computed = stream.computed, asyncio.Event()
            computed.set()
            if stream.tick_due:  # became due while in this batch
                self._due.set()

    async def _last_event(self, stream: LiveStream) -> None:
        """The event of the stream's last audio (with the next batch), before it ends."""
        if not stream.computing and stream.analyzer.fed <= stream.analyzer.computed_to:
            return
        if not stream.tick_due:
            stream.tick_due, stream.due_since = True, time.monotonic()
        self._due.set()
        deadline = time.monotonic() + 30
        while (stream.tick_due or stream.computing) and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.computed.wait(), 1)

    # -- end ------------------------------------------------------------------------------

    async def end(
        self, stream: LiveStream, reason: EndReason, error: dict[str, str] | None = None
    ) -> None:
        """Finish a stream: last audio, last live event, the analysis job, the end event."""
        if stream.state != "live":
            return
        self.release(stream, final=True)
        if stream.ahead_shape is not None and stream.spool_file is not None and stream.written:
            # the last blocks, while the last live event is made: the job finds them all
            self._compute_ahead(stream, stream.ahead_shape, final=True)
        await self._last_event(stream)
        stream.tick_due = False
        stream.state = "ended"
        stream.analyzer.close()  # the record is kept STREAM_KEEP_S: numbers only, no audio
        stream.ended_at = time.time()
        stream.end_reason = reason
        stream.error = error
        spool, stream.spool = stream.spool, None
        spool_file, stream.spool_file = stream.spool_file, None
        if spool is not None:
            await asyncio.to_thread(spool.close)
        if spool_file is not None:
            spool_file.close()
        if stream.ahead_tasks:  # blocks being computed: the job would compute them again
            await asyncio.wait(set(stream.ahead_tasks), timeout=AHEAD_WAIT_S)
        if stream.written == 0:
            stream.spool_path.unlink(missing_ok=True)
            stream.error = stream.error or {
                "code": "stream.no_audio",
                "message": "the stream ended before any audio arrived; nothing to analyse",
            }
        elif not self.jobs.stopping:
            try:
                stream.analysis_id = self._submit(stream)
            except Exception:
                log.exception("stream analysis not queued", extra={"stream_id": stream.id})
                stream.spool_path.unlink(missing_ok=True)
                stream.error = {"code": "internal", "message": "the analysis could not be queued"}
        else:
            stream.spool_path.unlink(missing_ok=True)
        if stream.analysis_id is None:
            stage1_ahead.remove(stream.spool_path)
        self.metrics.streams.labels(stream.protocol, reason).inc()
        stream.publish("end", self.describe(stream))
        log.info(
            "stream ended",
            extra={
                "stream_id": stream.id,
                "reason": reason,
                "audio_s": round(stream.audio_s, 2),
                "analysis_id": stream.analysis_id,
                "live_compute_s": round(stream.compute_s, 3),
                "blocks_ahead": stream.blocks_ahead,
            },
        )

    def _submit(self, stream: LiveStream) -> str:
        job_id = f"an_{uuid.uuid4().hex}"
        audio = self.jobs.audio_dir / f"{job_id}.wav"
        os.replace(stream.spool_path, audio)
        stream.blocks_ahead = stage1_ahead.move(stream.spool_path, audio)
        config = stream.config
        values = {
            "id": job_id,
            "owner": stream.owner,
            "status": "queued",
            "created_at": time.time(),
            "config": config.model_dump(mode="json"),
            "filename": f"{stream.id}.wav",
            "audio_path": str(audio),
            "keep_audio": False,
            "size_bytes": audio.stat().st_size,
            "idempotency_key": None,
            "fingerprint": hashlib.sha256(f"stream:{stream.id}:{job_id}".encode()).hexdigest(),
            "callback_url": stream.callback_url,
            "base_url": (self.settings.public_base_url or "").rstrip("/"),
        }
        self.store.create_job(values)
        self.jobs.wake()
        return job_id

    async def stop_all(self) -> None:
        """At shutdown: end every live stream (its audio is queued, analysed at the next start)."""
        for stream in list(self.streams.values()):
            if stream.state == "live":
                await self.end(stream, "shutdown")
        if self._scheduler is not None:
            self._scheduler.cancel()
        await asyncio.to_thread(self.live_pool.shutdown)

    # -- views ------------------------------------------------------------------------------

    def describe(self, stream: LiveStream) -> dict[str, Any]:
        """The stream as ``GET /v1/streams/{id}`` shows it (``StreamOut``)."""
        stats = stream.buffer.stats
        analysis_status = None
        if stream.analysis_id is not None:
            job = self.store.get(stream.analysis_id)
            analysis_status = job.status if job is not None else "deleted"
        base = (self.settings.public_base_url or "").rstrip("/")
        return {
            "id": stream.id,
            "protocol": stream.protocol,
            "state": stream.state,
            "started_at": _iso(stream.started_at),
            "ended_at": _iso(stream.ended_at),
            "end_reason": stream.end_reason,
            "audio_s": round(stream.audio_s, 3),
            "sample_rate_hz": stream.sample_rate_hz,
            "agent_channel": stream.agent_channel,
            "channels": list(stream.channel_names),
            "frames": {
                "received": stats.frames,
                "placed": stats.placed,
                "duplicates": stats.duplicates,
                "late": stats.late,
                "too_far": stats.too_far,
            },
            "filled_s": [round(n / stream.sample_rate_hz, 3) for n in stats.filled_samples],
            "events_url": f"{base}/v1/streams/{stream.id}/events",
            "analysis_id": stream.analysis_id,
            "analysis_url": (
                None if stream.analysis_id is None else f"{base}/v1/analyses/{stream.analysis_id}"
            ),
            "analysis_status": analysis_status,
            "error": stream.error,
        }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    from datetime import UTC, datetime

    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
