"""Many concurrent live calls against a real server: event latency, dropped frames, CPU, memory.

    python bench/stream_load.py --streams 100 --minutes 3             # 100 real-time Twilio calls
    python bench/stream_load.py --streams 10 --minutes 60 --speed 6   # long calls: memory slope
    python bench/stream_load.py --streams 1 --minutes 30 --speed 30   # stop -> report, 30-min call

A `mirrorline serve` process is started on a fresh data directory (or ``--url`` names a
running one). Each stream is a call streamed the platform's way (``--protocol``; Twilio by
default: JSON text messages, 20 ms of mu-law per track and message, both tracks on one
socket, sent every ``--tick-ms`` in real time), built from the bundled 9.7-minute sample
(each stream starts at a different point of it and loops), and each has a subscriber on
``WS /v1/streams/{id}/events``. All clients run in this one process (asyncio).

Printed:

- *event latency*: for each ``live`` event, the time from sending the audio frame that
  completes its ``t_s`` (the newest audio the event includes) to receiving the event: the
  jitter buffer's hold, the wait for the live computation and the delivery, p50/p95/max;
- *dropped frames*: frames sent that the server did not place (``frames.received`` vs
  sent, plus ``late`` and ``too_far``), and events the subscriber missed;
- the sender's lag behind its real-time schedule (this client shares the machine: a large
  lag means the numbers measure the client, not the server);
- server process CPU (cores used) and RSS, sampled each second; memory per stream = (RSS
  with every stream live - RSS before the first stream) / streams, and the RSS slope while
  all streams are live (MB per hour of call, per stream): flat memory means a slope near 0;
- when the run ends: *stop -> report*, the time from sending the stop to the analysis
  being ``completed`` (``GET /v1/streams/{id}``). Faster than real time, the server's live
  mirroring updates (every ``MIRRORLINE_LIVE_MIRRORING_S`` of call) are spaced by the speed
  too (unless ``--env`` sets them), so its analysis worker is as busy per second as with
  real-time calls.

The machine load (``uptime``) is printed before and after: the development machine has 2
cores shared with other people.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE = REPO / "samples" / "mirroring_call.opus"
RATE_HZ = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE_HZ * FRAME_MS // 1000


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# -- the calls -------------------------------------------------------------------------------


class Frames:
    """The bundled sample cut in 20-ms frames, encoded once for every protocol; stream k
    starts at frame ``offset(k)`` and loops."""

    def __init__(self) -> None:
        from dsp.io import decode
        from service.replay import mulaw_encode

        audio = decode(SAMPLE, max_rate_hz=RATE_HZ).samples
        pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
        n = pcm.shape[1] // FRAME_SAMPLES
        pcm = pcm[:, : n * FRAME_SAMPLES]
        self.count = n
        ulaw = [mulaw_encode(pcm[c]) for c in (0, 1)]
        self.b64 = [
            [
                base64.b64encode(ulaw[c][i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]).decode()
                for i in range(n)
            ]
            for c in (0, 1)
        ]
        inter_ulaw = mulaw_encode(np.ascontiguousarray(pcm.T).reshape(-1))
        self.stereo_ulaw = [
            inter_ulaw[2 * i * FRAME_SAMPLES : 2 * (i + 1) * FRAME_SAMPLES] for i in range(n)
        ]

    def offset(self, k: int) -> int:
        return (k * 1847) % self.count  # ~37 s apart


@dataclass
class StreamResult:
    id: str
    sent_frames: int = 0  # per track
    send_end_t: list[float] = field(default_factory=list)  # per tick: when it was sent
    tick_end_samples: list[int] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    events: int = 0
    event_seq_gaps: int = 0
    close_code: int | None = None
    close_reason: str | None = None
    stop_sent_t: float | None = None
    report_t: float | None = None
    state: dict[str, Any] | None = None
    error: str | None = None


def _twilio_start(call_sid: str, stream_sid: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC" + "0" * 32,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound", "outbound"],
                "customParameters": {"agent_track": "outbound"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": stream_sid,
        }
    )


def _twilio_media(stream_sid: str, seq: int, track: str, chunk: int, payload: str) -> str:
    return (
        f'{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"{track}",'
        f'"chunk":"{chunk}","timestamp":"{(chunk - 1) * FRAME_MS}","payload":"{payload}"}},'
        f'"streamSid":"{stream_sid}"}}'
    )


async def run_stream(
    k: int,
    args: argparse.Namespace,
    frames: Frames,
    ws_base: str,
    http_base: str,
    result: StreamResult,
    all_live: asyncio.Event,
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    n_frames = int(args.minutes * 60 * 1000 / FRAME_MS)
    per_tick = max(1, args.tick_ms // FRAME_MS)
    speed = None if args.speed == "max" else float(args.speed)
    offset = frames.offset(k)
    url = f"{ws_base}/v1/streams/{args.protocol}"
    stream_sid = f"MZload{k:032d}"
    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        if args.protocol == "twilio":
            await ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
            await ws.send(_twilio_start(result.id, stream_sid))
        elif args.protocol == "raw":
            start = {"event": "start", "id": result.id, "encoding": "mulaw"}
            await ws.send(json.dumps({**start, "sample_rate_hz": RATE_HZ, "agent_channel": 1}))
        else:
            from service.replay import audiohook_messages

            opening = audiohook_messages(np.zeros((2, 0), np.int16), result.id)[0]
            await ws.send(opening)
        subscriber = asyncio.create_task(subscribe(ws_base, result))
        t0 = time.perf_counter()
        seq = 2
        try:
            for first in range(0, n_frames, per_tick):
                last = min(n_frames, first + per_tick)
                if speed is not None:
                    due = t0 + first * FRAME_MS / 1000 / speed
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    result.lag_s.append(max(0.0, -delay))
                for i in range(first, last):
                    j = (offset + i) % frames.count
                    if args.protocol == "twilio":
                        for c, track in ((0, "inbound"), (1, "outbound")):
                            await ws.send(
                                _twilio_media(stream_sid, seq, track, i + 1, frames.b64[c][j])
                            )
                            seq += 1
                    else:
                        await ws.send(frames.stereo_ulaw[j])
                result.sent_frames = last
                result.send_end_t.append(time.perf_counter())
                result.tick_end_samples.append(last * FRAME_SAMPLES)
                if speed is None and first % (50 * per_tick) == 0:
                    await asyncio.sleep(0)  # let the other streams and subscribers run
            await all_live.wait()  # every stream stays live until all were (the plateau)
            result.stop_sent_t = time.perf_counter()
            if args.protocol == "twilio":
                await ws.send(json.dumps({"event": "stop", "streamSid": stream_sid}))
            elif args.protocol == "raw":
                await ws.send('{"event":"stop"}')
            else:
                close = {"version": "2", "id": stream_sid, "type": "close", "seq": seq}
                await ws.send(json.dumps({**close, "parameters": {"reason": "end"}}))
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 120)
        except ConnectionClosed:
            pass
        finally:
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(subscriber, 30)
            subscriber.cancel()


async def subscribe(ws_base: str, result: StreamResult) -> None:
    """Follow the stream's events; each live event's latency from the send of its audio."""
    import bisect

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    for _ in range(100):
        try:
            async with connect(
                f"{ws_base}/v1/streams/{result.id}/events", compression=None, open_timeout=60
            ) as ws:
                last_seq = None
                not_yet = False
                async for message in ws:
                    received = time.perf_counter()
                    event = json.loads(message)
                    if event.get("event") == "error":  # not started yet: 4404 follows
                        not_yet = True
                        break
                    if last_seq is not None and event["seq"] != last_seq + 1:
                        result.event_seq_gaps += event["seq"] - last_seq - 1
                    last_seq = event["seq"]
                    if event["event"] != "live":
                        continue
                    result.events += 1
                    end = int(round(event["t_s"] * RATE_HZ))
                    tick = bisect.bisect_left(result.tick_end_samples, end)
                    if tick < len(result.send_end_t):
                        result.latencies_s.append(received - result.send_end_t[tick])
            if not not_yet:
                return
            await asyncio.sleep(0.05)
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 4404:  # not started yet
                await asyncio.sleep(0.05)
                continue
            return


async def wait_report(http_base: str, result: StreamResult, timeout_s: float) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            state = (await client.get(f"{http_base}/v1/streams/{result.id}")).json()
            result.state = state
            if state.get("analysis_status") in ("completed", "failed", "deleted"):
                result.report_t = time.perf_counter()
                return
            if state.get("state") == "ended" and state.get("analysis_id") is None:
                return
            await asyncio.sleep(0.02)


# -- the server --------------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                out.extend(int(c) for c in children)
                todo.extend(int(c) for c in children)
    return out


def _tree_cpu_s(pid: int) -> float:
    total = 0.0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            total += _proc_cpu_s(p)
    return total


@dataclass
class Sample:
    t: float
    cpu_s: float  # the server process
    rss_mb: float
    live: int
    tree_cpu_s: float  # with its worker processes (live events; analyses at the end)
    audio_s: float  # audio sent per stream so far (mean)


async def monitor(pid: int, samples: list[Sample], results: list[StreamResult]) -> None:
    while True:
        live = sum(1 for r in results if r.sent_frames and r.stop_sent_t is None)
        audio_s = sum(r.sent_frames for r in results) * FRAME_MS / 1000 / len(results)
        with contextlib.suppress(OSError):
            samples.append(
                Sample(
                    time.perf_counter(),
                    _proc_cpu_s(pid),
                    _proc_rss_mb(pid),
                    live,
                    _tree_cpu_s(pid),
                    audio_s,
                )
            )
        await asyncio.sleep(1.0)


def start_server(
    data_dir: Path, streams: int, env_extra: dict[str, str], speed: float | None
) -> tuple[Any, str]:
    from service.settings import Settings
    from tests.service.conftest import Server

    env = {
        "MIRRORLINE_WORKERS": "1",
        "MIRRORLINE_STREAM_MAX_CONCURRENT": str(max(100, streams)),
        "MIRRORLINE_LOG_LEVEL": "WARNING",
        **env_extra,
    }
    if speed is not None and speed > 1 and "MIRRORLINE_LIVE_MIRRORING_S" not in env:
        # The live mirroring is measured again every so many seconds of call: faster than
        # real time it would keep the analysis worker busier than real calls do (at 30x,
        # a 30-min call's update every 4 s); scaled, it is as busy per second as at 1x.
        every_s = Settings.model_fields["live_mirroring_s"].default * speed
        env["MIRRORLINE_LIVE_MIRRORING_S"] = str(min(every_s, 3600.0))
        print(f"live mirroring every {env['MIRRORLINE_LIVE_MIRRORING_S']} s of call", flush=True)
    server = Server(data_dir, env).start()
    return server, server.url


# -- the run -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def main_async(args: argparse.Namespace) -> int:
    frames = Frames()
    env_extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="mirrorline-load-") as tmp:
        server = None
        if args.url:
            http_base = args.url.rstrip("/")
            pid = args.pid
        else:
            speed = None if args.speed == "max" else float(args.speed)
            server, http_base = start_server(Path(tmp) / "data", args.streams, env_extra, speed)
            pid = server.process.pid
        ws_base = http_base.replace("http", "ws", 1)
        try:
            return await run(args, frames, http_base, ws_base, pid)
        finally:
            if server is not None:
                server.stop()
                if args.server_log:
                    Path(args.server_log).write_text(server.log())


async def run(
    args: argparse.Namespace, frames: Frames, http_base: str, ws_base: str, pid: int | None
) -> int:
    run_id = os.urandom(3).hex()
    results = [StreamResult(id=f"CAload{run_id}{k:04d}") for k in range(args.streams)]
    samples: list[Sample] = []
    load_before = uptime()
    print(f"before: {load_before}", flush=True)
    monitor_task = asyncio.create_task(monitor(pid, samples, results)) if pid else None
    await asyncio.sleep(2.0)  # the idle baseline
    all_live = asyncio.Event()
    client_cpu0 = time.process_time()
    started = time.perf_counter()

    async def one(k: int) -> None:
        await asyncio.sleep(k * args.ramp_s / max(1, args.streams))
        try:
            await run_stream(k, args, frames, ws_base, http_base, results[k], all_live)
        except Exception as exc:  # a refused or broken connection is a result, not a crash
            results[k].error = f"{type(exc).__name__}: {exc}"
            return
        # from its own stop: calls that end apart are timed apart
        await wait_report(http_base, results[k], args.report_timeout_s)

    async def plateau() -> None:
        # all streams live: each has sent at least one tick and none has finished sending
        while not all(r.sent_frames for r in results if r.error is None):
            await asyncio.sleep(0.1)
        all_live.set()

    plateau_task = asyncio.create_task(plateau())
    tasks = [asyncio.create_task(one(k)) for k in range(args.streams)]
    await asyncio.gather(*tasks)
    wall_s = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu0
    plateau_task.cancel()
    if monitor_task is not None:
        monitor_task.cancel()
    load_after = uptime()
    return report(args, results, samples, wall_s, client_cpu, load_before, load_after)


def report(
    args: argparse.Namespace,
    results: list[StreamResult],
    samples: list[Sample],
    wall_s: float,
    client_cpu_s: float,
    load_before: str,
    load_after: str,
) -> int:
    ok = [r for r in results if r.error is None]
    lat = [x for r in ok for x in r.latencies_s]
    lag = [x for r in ok for x in r.lag_s]
    sent = sum(r.sent_frames for r in ok) * 2  # frames of both tracks
    received = placed = late = too_far = dup = 0
    for r in ok:
        frames = (r.state or {}).get("frames") or {}
        received += frames.get("received", 0)
        placed += frames.get("placed", 0)
        late += frames.get("late", 0)
        too_far += frames.get("too_far", 0)
        dup += frames.get("duplicates", 0)
    # Twilio: one message per frame and track; the others one stereo message per frame,
    # which the server counts as a frame per channel too
    closes: dict[str, int] = {}
    for r in results:
        key = r.error or f"{r.close_code} {r.close_reason or ''}".strip()
        closes[key] = closes.get(key, 0) + 1
    print(
        f"streams: {args.streams} x {args.minutes:g} min of {args.protocol} at speed "
        f"{args.speed} (tick {args.tick_ms} ms, ramp {args.ramp_s:g} s); wall {wall_s:.0f} s"
    )
    print(f"closes: {closes}")
    print(
        f"event latency (send of the audio -> the event that includes it), {len(lat)} events: "
        f"p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms, "
        f"max {max(lat, default=float('nan')) * 1000:.0f} ms"
    )
    events_expected = sum(int(r.sent_frames * FRAME_MS / 1000) for r in ok)
    print(
        f"events: {sum(r.events for r in ok)} live events received of ~{events_expected} "
        f"seconds of audio; {sum(r.event_seq_gaps for r in ok)} skipped by the subscriber"
    )
    print(
        f"frames: {sent} sent, {received} received by the server, {placed} placed; dropped "
        f"{sent - placed} (late {late}, too far {too_far}, duplicates {dup})"
    )
    print(
        f"sender lag behind real time: p50 {pct(lag, 50) * 1000:.0f} ms, p95 "
        f"{pct(lag, 95) * 1000:.0f} ms, max {max(lag, default=0) * 1000:.0f} ms; "
        f"client CPU {client_cpu_s / wall_s:.2f} cores"
    )
    if len(samples) >= 3:
        base = samples[:2]
        idle_rss = min(s.rss_mb for s in base)
        full = [s for s in samples if s.live == args.streams]
        cpu = [
            (b.cpu_s - a.cpu_s) / (b.t - a.t) for a, b in zip(samples, samples[1:], strict=False)
        ]
        cpu_full = [
            (b.cpu_s - a.cpu_s) / (b.t - a.t)
            for a, b in zip(samples, samples[1:], strict=False)
            if a.live == b.live == args.streams
        ]
        tree_full = [
            (b.tree_cpu_s - a.tree_cpu_s) / (b.t - a.t)
            for a, b in zip(samples, samples[1:], strict=False)
            if a.live == b.live == args.streams
        ]
        print(
            f"server CPU with all streams live: process {statistics.mean(cpu_full or cpu):.2f} "
            f"cores mean (max 1 s sample {max(cpu_full or cpu):.2f}), with its live workers "
            f"{statistics.mean(tree_full) if tree_full else float('nan'):.2f} cores; "
            f"RSS idle {idle_rss:.0f} MB, max {max(s.rss_mb for s in samples):.0f} MB"
        )
        if full:
            rss_full = statistics.median(s.rss_mb for s in full)
            print(
                f"memory per stream: ({rss_full:.0f} - {idle_rss:.0f}) MB / {args.streams} = "
                f"{(rss_full - idle_rss) / args.streams:.2f} MB"
            )
            if len(full) >= 10:
                half = len(full) // 2
                audio = np.array([s.audio_s for s in full[half:]])
                rss = np.array([s.rss_mb for s in full[half:]])
                per_audio_s = float(np.polyfit(audio, rss, 1)[0])  # MB per s of each call
                print(
                    f"RSS slope over the second half of the plateau ({audio[0] / 60:.1f} -> "
                    f"{audio[-1] / 60:.1f} min of each call, RSS {rss[0]:.0f} -> "
                    f"{rss[-1]:.0f} MB): {per_audio_s * 3600 / args.streams:+.2f} MB per "
                    "stream per hour of call"
                )
    stops = [r.report_t - r.stop_sent_t for r in ok if r.report_t and r.stop_sent_t]
    if stops:
        print(
            f"stop -> report completed: p50 {statistics.median(stops):.2f} s, max "
            f"{max(stops):.2f} s ({len(stops)} streams of {args.minutes:g} min; analyses "
            "queue behind each other when many end at once)"
        )
    print(f"after: {load_after}")
    summary = {
        "streams": args.streams,
        "minutes": args.minutes,
        "protocol": args.protocol,
        "speed": args.speed,
        "latency_p50_ms": round(pct(lat, 50) * 1000),
        "latency_p95_ms": round(pct(lat, 95) * 1000),
        "dropped_frames": sent - placed,
        "stop_to_report_max_s": round(max(stops), 2) if stops else None,
    }
    print(json.dumps(summary))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=100, help="concurrent calls")
    parser.add_argument("--minutes", type=float, default=3.0, help="length of each call")
    parser.add_argument("--protocol", choices=("twilio", "raw", "audiohook"), default="twilio")
    parser.add_argument("--speed", default="1", help="times real time, or max")
    parser.add_argument("--tick-ms", type=int, default=20, help="send every N ms (20: Twilio)")
    parser.add_argument("--ramp-s", type=float, default=10.0, help="streams start over this")
    parser.add_argument("--report-timeout-s", type=float, default=600.0)
    parser.add_argument("--server-log", help="write the started server's log here")
    parser.add_argument("--url", help="a running server instead of starting one")
    parser.add_argument("--pid", type=int, help="its process id (for CPU and memory)")
    parser.add_argument(
        "--env", action="append", default=[], help="MIRRORLINE_X=value for the started server"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
