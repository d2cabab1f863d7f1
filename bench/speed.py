"""Speed and memory of `mirrorline analyze` on long calls, against reference tools.

Builds stereo 8 kHz mu-law calls of 10, 60 and 120 minutes by looping the bundled real
two-party sample, then times each as a whole cold process (wall, CPU, peak RSS; median of
repeated runs). In the same run it times the references: Praat pitch + intensity through
parselmouth, and openSMILE eGeMAPS frame features (benchmark-only extras:
``pip install '.[bench]'``; skipped with a note when missing).

    python bench/speed.py                    # full run (several minutes)
    python bench/speed.py --minutes 10 60 --repeats 1 --no-opensmile --no-service

Also times the 60-minute call with stage 1 on one thread (``--threads 1``), and
the HTTP service: p50 of sequential single uploads of a 6-minute call to a warm local
server (started on 127.0.0.1 as bench/load.py does; needs httpx). The machine's load
(``os.getloadavg``) is printed with the numbers: on a shared 2-core machine wall times
move with it. Prints a Markdown table; a full run (the defaults) writes it to
bench/results/speed.md, a partial one only with ``--results FILE``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"
RESULTS = REPO / "bench" / "results" / "speed.md"
sys.path.insert(0, str(REPO))


def build_call(minutes: float, folder: Path) -> Path:
    """A stereo 8 kHz mu-law call of ``minutes`` made by looping the real sample."""
    from dsp.io import decode
    from tests.audiofiles import write_audio

    path = folder / f"call_{minutes:g}min.wav"
    if path.exists():
        return path
    sample = decode(SAMPLE).samples
    n = int(minutes * 60 * 8000)
    reps = -(-n // sample.shape[1])
    # Alternate the loop with its channel swap so the two parties do not repeat in lockstep.
    pieces = [sample if i % 2 == 0 else sample[::-1] for i in range(reps)]
    write_audio(path, np.concatenate(pieces, axis=1)[:, :n], 8000, codec="pcm_mulaw")
    return path


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall s, CPU s, peak RSS MB) of that process and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def median_of(
    cmd: list[str], repeats: int, env: dict[str, str] | None = None
) -> tuple[float, float, float]:
    runs = [measure(cmd, env) for _ in range(repeats)]
    return tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[return-value]


PRAAT = textwrap.dedent(
    """
    import sys, parselmouth
    sound = parselmouth.Sound(sys.argv[1])
    for channel in (sound.extract_left_channel(), sound.extract_right_channel()):
        channel.to_pitch_ac(time_step=0.01, pitch_floor=60, pitch_ceiling=500)
        channel.to_intensity(minimum_pitch=60, time_step=0.01)
    """
)
OPENSMILE = textwrap.dedent(
    """
    import sys, opensmile
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
        multiprocessing=False,
    )
    import soundfile
    y, sr = soundfile.read(sys.argv[1], dtype="float32", always_2d=True)
    for c in (0, 1):
        smile.process_signal(y[:, c], sr)
    """
)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def service_p50(minutes: float, requests: int) -> tuple[float, float, float]:
    """(p50, min, max) latency s of sequential uploads of a call to a warm local server."""
    sys.path.insert(0, str(REPO / "bench"))
    import signal

    import load as load_bench

    with tempfile.TemporaryDirectory() as tmp:
        call = Path(tmp) / "call.wav"
        load_bench.build_call(call, minutes * 60.0)
        proc, url = load_bench.start_server(Path(tmp) / "data", 2)
        try:
            load_bench.one_request(url, call, "sync", {})  # warm-up: first use of a worker
            times = []
            for _ in range(requests):
                status, latency, _ = load_bench.one_request(url, call, "sync", {})
                if status != 200:
                    raise RuntimeError(f"the service answered {status}")
                times.append(latency)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    return statistics.median(times), min(times), max(times)


def has(module: str) -> bool:
    return (
        subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode
        == 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 120])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-praat", action="store_true")
    parser.add_argument("--no-opensmile", action="store_true")
    parser.add_argument("--opensmile-minutes", type=float, default=10.0)
    parser.add_argument("--no-service", action="store_true", help="skip the HTTP service")
    parser.add_argument("--service-requests", type=int, default=7)
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "mirrorline-bench")
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="where to write the table (default: bench/results/speed.md on a full run, "
        "nowhere on a partial one, so a quick check does not replace the committed table)",
    )
    args = parser.parse_args()
    full = (
        sorted(args.minutes) == [10, 60, 120]
        and args.repeats >= 3
        and not (args.no_praat or args.no_service)
    )
    results = args.results or (RESULTS if full else None)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "service.cli", "analyze", "--no-progress", "-o", os.devnull]
    rows: list[str] = []
    ours: dict[float, tuple[float, float, float]] = {}
    praat: dict[float, tuple[float, float, float]] = {}
    load_before = load()
    print(f"machine: {os.cpu_count()} cores, {load_before}", flush=True)

    short = work / "call_10s.wav"
    if not short.exists():
        from dsp.io import decode
        from tests.audiofiles import write_audio

        write_audio(short, decode(SAMPLE).samples[:, : 10 * 8000], 8000, codec="pcm_mulaw")
    wall, cpu, rss = median_of([*cli, str(short)], args.repeats)
    rows.append(f"| mirrorline analyze | 10 s | {wall:.2f} | {cpu:.2f} | {rss:.0f} | | |")
    print(rows[-1], flush=True)

    for minutes in args.minutes:
        call = build_call(minutes, work)
        ours[minutes] = median_of([*cli, str(call)], args.repeats)
        wall, cpu, rss = ours[minutes]
        rt = minutes * 60 / wall
        rows.append(
            f"| mirrorline analyze | {minutes:g} min | {wall:.2f} | {cpu:.2f} | {rss:.0f} "
            f"| {rt:.0f}x | |"
        )
        print(rows[-1], flush=True)
        if not args.no_praat and has("parselmouth"):
            p_wall, p_cpu, p_rss = median_of([sys.executable, "-c", PRAAT, str(call)], 1)
            praat[minutes] = (p_wall, p_cpu, p_rss)
            rows.append(
                f"| Praat pitch+intensity (parselmouth) | {minutes:g} min | {p_wall:.2f} | "
                f"{p_cpu:.2f} | {p_rss:.0f} | {minutes * 60 / p_wall:.0f}x "
                f"| mirrorline {p_wall / wall:.1f}x faster (CPU {p_cpu / cpu:.1f}x) |"
            )
            print(rows[-1], flush=True)
        if not args.no_opensmile and minutes == args.opensmile_minutes and has("opensmile"):
            try:
                o_wall, o_cpu, o_rss = median_of([sys.executable, "-c", OPENSMILE, str(call)], 1)
            except RuntimeError as exc:  # a reference failing must not lose our numbers
                print(f"openSMILE failed, skipped: {str(exc)[-300:]}", flush=True)
            else:
                rows.append(
                    f"| openSMILE eGeMAPS LLD (both channels) | {minutes:g} min | {o_wall:.2f} "
                    f"| {o_cpu:.2f} | {o_rss:.0f} | {minutes * 60 / o_wall:.0f}x | "
                    f"mirrorline {o_wall / wall:.1f}x faster |"
                )
                print(rows[-1], flush=True)

        if minutes == 60:
            t_wall, t_cpu, t_rss = median_of([*cli, "--threads", "1", str(call)], args.repeats)
            rows.append(
                f"| mirrorline analyze, stage 1 on one thread | {minutes:g} min | {t_wall:.2f} "
                f"| {t_cpu:.2f} | {t_rss:.0f} | {minutes * 60 / t_wall:.0f}x "
                f"| two threads {t_wall / wall:.2f}x faster |"
            )
            print(rows[-1], flush=True)

    if not args.no_service and has("httpx"):
        p50, fastest, slowest = service_p50(6.0, args.service_requests)
        rows.append(
            f"| service POST /v1/analyze, warm, sequential (p50; min-max {fastest:.2f}-"
            f"{slowest:.2f}) | 6 min | {p50:.2f} | | | {360 / p50:.0f}x | |"
        )
        print(rows[-1], flush=True)

    notes = [f"- machine load (1/5-min averages) before: {load_before}; after: {load()}"]
    if 60 in ours and 60 in praat:
        notes.append(
            f"- 60 min: mirrorline (full report) {praat[60][0] / ours[60][0]:.1f}x faster than "
            f"Praat pitch+intensity in wall time, {praat[60][1] / ours[60][1]:.1f}x in CPU time"
        )
    if 60 in ours and 120 in ours:
        notes.append(
            f"- memory 120 min / 60 min: {ours[120][2] / ours[60][2]:.2f}x; "
            f"time 120 min / 60 min: {ours[120][0] / ours[60][0]:.2f}x"
        )
    table = "\n".join(
        [
            "| what | call | wall s | CPU s | peak RSS MB | speed (x real time) | vs mirrorline |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    header = (
        f"# Speed benchmark\n\n`python bench/speed.py` on {os.cpu_count()} cores "
        f"(shared machine, {load_before}), "
        f"{time.strftime('%Y-%m-%d')}; stereo 8 kHz mu-law calls looped from the bundled real "
        f"sample; whole cold processes, median of {args.repeats} runs (references: 1 run).\n\n"
    )
    text = header + table + "\n\n" + "\n".join(notes) + "\n"
    print()
    print(text)
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(text)
        print(f"written to {results}")


if __name__ == "__main__":
    main()
