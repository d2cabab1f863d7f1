"""Processing cost of live streams per second of streamed audio.

    python bench/live.py                       # in-process, the bundled 9.7-min sample
    python bench/live.py --server --speed 4    # also through a real `mirrorline serve`

In-process (what one stream costs the server, without the network):

- *ingest*: Twilio JSON messages (20 ms, two tracks) parsed, base64 and mu-law decoded,
  placed by the jitter buffer and released (service.stream_protocols, service.jitter);
- *live*: one live event per second of audio (service.live.LiveAnalyzer: stage 1 of the
  new audio, then speech activity, pitch on the speech frames, loudness and syllable
  nuclei on the last LIVE_WINDOW_S, cues), one stream at a time; then *batched*: many
  streams' events in one call, the way the server's live workers compute them (one pitch
  search per batch).

Both are printed as CPU seconds per second of audio (a real-time factor: 0.05 means one
core keeps up with 20 calls). With ``--server`` the call is streamed as Twilio would at
``--speed`` times real time and the server process's own CPU time (not its analysis
workers', which run the end-of-call report) is divided by the audio's length.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE = REPO / "samples" / "mirroring_call.opus"


def load(minutes: float | None) -> np.ndarray:
    from dsp.io import decode

    audio = decode(SAMPLE, max_rate_hz=8000).samples
    if minutes is not None:
        audio = audio[:, : int(minutes * 60 * 8000)]
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)


def bench_ingest(audio: np.ndarray) -> float:
    from service.jitter import JitterBuffer
    from service.replay import twilio_messages
    from service.stream_protocols import TwilioMedia, parse_json, parse_twilio

    messages = twilio_messages(audio, "CAbench", shuffle_window=10)
    buffer = JitterBuffer(2, delay_samples=8000, max_jump_samples=480000)
    started = time.process_time()
    for text in messages:
        parsed = parse_twilio(parse_json(text))
        if isinstance(parsed, TwilioMedia):
            channel = 0 if parsed.track == "inbound" else 1
            buffer.push(channel, parsed.timestamp_ms * 8, parsed.samples)
            buffer.release()
    buffer.flush()
    return time.process_time() - started


def bench_live(audio: np.ndarray, window_s: float) -> tuple[float, list[float]]:
    from service.live import LiveAnalyzer

    live = LiveAnalyzer(8000, 1, window_s=window_s)
    per_event = []
    started = time.process_time()
    for k in range(0, audio.shape[1], 8000):
        live.feed(audio[:, k : k + 8000])
        t0 = time.perf_counter()
        live.compute(live.snapshot())
        per_event.append(time.perf_counter() - t0)
    return time.process_time() - started, per_event


def bench_batched(audio: np.ndarray, window_s: float, batch: int) -> float:
    """CPU s per event when ``batch`` streams' events are measured in one call, as the
    server's live workers do (service.live_dsp.measure_windows): each stream has a full window
    of tracks from its earlier events and one new second of audio."""
    from service.live import LiveAnalyzer
    from service.live_dsp import measure_windows

    n = int((window_s + 2) * 8000)
    starts = np.linspace(0, audio.shape[1] - n, batch).astype(int)
    works = []
    for a in starts:
        live = LiveAnalyzer(8000, 1, window_s=window_s)
        for k in range(a, a + n - 8000, 8000):
            live.feed(audio[:, k : k + 8000])
            live.compute(live.snapshot())
        live.feed(audio[:, a + n - 8000 : a + n])
        works.append(live.snapshot())
    measure_windows(works[:1])
    started = time.process_time()
    measure_windows(works)
    return (time.process_time() - started) / batch


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_server(audio: np.ndarray, speed: float) -> dict[str, float]:
    import httpx

    from service.replay import send, twilio_messages
    from tests.service.conftest import Server

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", {"MIRRORLINE_WORKERS": "1"}).start()
        try:
            assert server.process is not None
            messages = twilio_messages(audio, "CAbenchserver")
            before = _cpu_s(server.process.pid)
            started = time.perf_counter()
            code, reason, _ = send(
                server.url.replace("http", "ws") + "/v1/streams/twilio",
                messages,
                realtime_s_per_message=0.01 / speed,
            )
            wall = time.perf_counter() - started
            cpu = _cpu_s(server.process.pid) - before
            stream = httpx.get(server.url + "/v1/streams/CAbenchserver").json()
            assert code == 1000, reason
        finally:
            server.stop()
    return {"wall_s": wall, "server_cpu_s": cpu, "audio_s": stream["audio_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="first N minutes only")
    parser.add_argument("--window-s", type=float, default=10.0, help="LIVE_WINDOW_S")
    parser.add_argument("--server", action="store_true", help="also stream to a real server")
    parser.add_argument("--speed", type=float, default=4.0, help="times real time (--server)")
    args = parser.parse_args()

    audio = load(args.minutes)
    seconds = audio.shape[1] / 8000
    print(f"call: {SAMPLE.name}, {seconds:.0f} s, 8 kHz stereo; {os.cpu_count()} cores")
    ingest = bench_ingest(audio)
    print(
        f"ingest (Twilio JSON, mu-law, jitter buffer): {ingest / seconds * 1000:.2f} ms CPU "
        "per s of audio"
    )
    live_cpu, per_event = bench_live(audio, args.window_s)
    p95 = float(np.percentile(per_event, 95))
    print(
        f"live events ({args.window_s:g} s window, one per s): {live_cpu / seconds * 1000:.1f} ms "
        f"CPU per s of audio; per event median {statistics.median(per_event) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {max(per_event) * 1000:.1f} ms"
    )
    for batch in (10, 50):
        per_window = bench_batched(audio, args.window_s, batch)
        print(
            f"live events batched ({batch} streams' events in one call, as the server's live "
            f"workers compute them): {per_window * 1000:.1f} ms CPU per event"
        )
    total = (ingest + live_cpu) / seconds
    print(
        f"one stream: real-time factor {total:.3f} (CPU s per s of audio): "
        f"about {int(2 / total)} streams' live processing on 2 cores"
    )
    if args.server:
        result = bench_server(audio, args.speed)
        print(
            f"server (Twilio over WebSocket at {args.speed:g}x): {result['audio_s']:.0f} s of "
            f"audio in {result['wall_s']:.1f} s, server CPU {result['server_cpu_s']:.1f} s = "
            f"{result['server_cpu_s'] / result['audio_s']:.3f} s per s of audio"
        )
        print(json.dumps({k: round(v, 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
