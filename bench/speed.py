"""Speed and memory of `mirrorline analyze` on long calls, against reference tools.

Builds stereo 8 kHz mu-law calls of 10, 60 and 120 minutes by looping the bundled real
two-party sample, then times each as a whole cold process (wall, CPU, peak RSS; median of
repeated runs). In the same run it times the references: Praat pitch + intensity through
parselmouth, and openSMILE eGeMAPS frame features (benchmark-only extras:
``pip install '.[bench]'``; skipped with a note when missing).

    python bench/speed.py                    # full run (several minutes)
    python bench/speed.py --minutes 10 60 --repeats 1 --no-opensmile

Prints a Markdown table and writes it to bench/results/speed.md.
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


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall s, CPU s, peak RSS MB) of that process and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def median_of(cmd: list[str], repeats: int) -> tuple[float, float, float]:
    runs = [measure(cmd) for _ in range(repeats)]
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
        channels=[0, 1], multiprocessing=False,
    )
    import soundfile
    y, sr = soundfile.read(sys.argv[1], dtype="float32", always_2d=True)
    for c in (0, 1):
        smile.process_signal(y[:, c], sr)
    """
)


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
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "mirrorline-bench")
    )
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "service.cli", "analyze", "--no-progress", "-o", os.devnull]
    rows: list[str] = []
    ours: dict[float, tuple[float, float, float]] = {}

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
            ratio = p_wall / wall
            rows.append(
                f"| Praat pitch+intensity (parselmouth) | {minutes:g} min | {p_wall:.2f} | "
                f"{p_cpu:.2f} | {p_rss:.0f} | {minutes * 60 / p_wall:.0f}x "
                f"| mirrorline {ratio:.1f}x faster |"
            )
            print(rows[-1], flush=True)
        if not args.no_opensmile and minutes == args.opensmile_minutes and has("opensmile"):
            o_wall, o_cpu, o_rss = median_of([sys.executable, "-c", OPENSMILE, str(call)], 1)
            rows.append(
                f"| openSMILE eGeMAPS LLD (both channels) | {minutes:g} min | {o_wall:.2f} | "
                f"{o_cpu:.2f} | {o_rss:.0f} | {minutes * 60 / o_wall:.0f}x | "
                f"mirrorline {o_wall / wall:.1f}x faster |"
            )
            print(rows[-1], flush=True)

    notes = []
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
        f"# Speed benchmark\n\n`python bench/speed.py` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d')}; stereo 8 kHz mu-law calls looped from the bundled real "
        f"sample; whole cold processes, median of {args.repeats} runs (references: 1 run).\n\n"
    )
    text = header + table + "\n\n" + "\n".join(notes) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
