"""Scale: a batch on every core (``--jobs``), and the job service on one node and on many.

    python bench/scale.py batch [--calls 20] [--minutes 5] [--repeats 3]

``batch`` times ``mirrorline analyze calls/ -o out/`` (reports, pages, summary) on a folder
of ``--calls`` stereo 8 kHz mu-law calls of ``--minutes`` each, made by looping the real
bundled two-party sample from a different point for each call, with ``--jobs 1`` and
``--jobs 2`` run alternately (so both meet the same load), as whole cold processes; it
prints the median wall time of each, the speed-up and the peak memory. The machine's load
(``os.getloadavg``) is printed with the numbers: on a shared 2-core machine wall times move
with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"
sys.path.insert(0, str(REPO))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


def build_calls(folder: Path, n_calls: int, minutes: float) -> list[Path]:
    """``n_calls`` calls of ``minutes``: the real sample looped (alternately with its channels
    swapped, so the parties do not repeat in lockstep), each call from its own start."""
    from dsp.io import decode
    from tests.audiofiles import write_audio

    sample = decode(SAMPLE).samples
    n = int(minutes * 60 * 8000)
    reps = -(-n // sample.shape[1]) + 1
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_calls):
        start = (i * 7 * 8000) % sample.shape[1]
        rotated = np.roll(sample, -start, axis=1)
        pieces = [rotated if k % 2 == 0 else rotated[::-1] for k in range(reps)]
        paths.append(
            write_audio(
                folder / f"call_{i:02d}.wav",
                np.concatenate(pieces, axis=1)[:, :n],
                8000,
                codec="pcm_mulaw",
            )
        )
    return paths


def run(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; (wall s, peak RSS MB of the largest of it and its children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{cmd} failed: {stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0


def bench_batch(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        calls = Path(tmp) / "calls"
        build_calls(calls, args.calls, args.minutes)
        print(
            f"batch: {args.calls} calls of {args.minutes:g} min (8 kHz mu-law stereo), "
            f"mirrorline analyze calls/ -o out/ --jobs N, {os.cpu_count()} cores, {load()}"
        )
        times: dict[int, list[float]] = {1: [], 2: []}
        memory: dict[int, float] = {1: 0.0, 2: 0.0}
        for repeat in range(args.repeats):
            for jobs in (1, 2):
                out = Path(tmp) / f"out{jobs}_{repeat}"
                cmd = [sys.executable, "-m", "service.cli", "analyze", str(calls)]
                wall, rss = run([*cmd, "-o", str(out), "--no-progress", "--jobs", str(jobs)])
                times[jobs].append(wall)
                memory[jobs] = max(memory[jobs], rss)
                print(f"  --jobs {jobs}: {wall:.1f} s ({load()})", flush=True)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        print("| --jobs | median wall | per call | peak RSS (one process) |")
        print("|---|---|---|---|")
        for jobs, t in ((1, one), (2, two)):
            print(f"| {jobs} | {t:.1f} s | {t / args.calls:.2f} s | {memory[jobs]:.0f} MB |")
        print(f"speed-up --jobs 2 / --jobs 1: {one / two:.2f}x (target >= 1.7x), {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    batch = sub.add_parser("batch", help="mirrorline analyze calls/ --jobs 1 vs 2")
    batch.add_argument("--calls", type=int, default=20)
    batch.add_argument("--minutes", type=float, default=5.0)
    batch.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "batch":
        bench_batch(args)


if __name__ == "__main__":
    main()
