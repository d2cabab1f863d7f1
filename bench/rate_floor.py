"""How far do the syllable count and the articulation rate move when the rate does not?

Run from the repository root:  python bench/rate_floor.py

The recordings of bench/rate_tempo.py (the same 30 recording x band pairs) are measured by
the pipeline (:func:`rate_common.pipeline_speaker`) as they are and after two changes that
leave the speaking rate where it was:

- **delay**: 2.5, 5 and 7.5 ms of leading digital silence. Same samples, same tempo; only
  their phase against the 10 ms frame clock moves.
- **near 1x**: ``sox tempo -s`` 0.98x and 1.02x: one pass of the WSOLA a tempo cell goes
  through (``sox tempo 1`` leaves the samples as they are), with the rate barely changed.
- **round trip**: ``sox tempo -s`` 1.25x then 0.8x, and 0.8x then 1.25x: back to the
  original duration and rate through two passes.

Printed per recording and band: the syllables before > after and the articulation rate's
ratio after / before over the factor; then, per change, how many ratios are within 5 % of 1
(the tolerance bench/rate_tempo.py asks of a tempo change) and the worst. This is the floor
under bench/rate_tempo.py: a tempo cell moves every syllable's frame phase and goes through
WSOLA once, so it cannot be expected to hold tighter than these do.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_common import pipeline_speaker, require_corpus, sox_load  # noqa: E402
from rate_tempo import TOLERANCE, recordings  # noqa: E402

from dsp.measures import Rates  # noqa: E402

DELAYS_MS = (2.5, 5.0, 7.5)
NEAR_1X = ("0.98", "1.02")
ROUND_TRIPS = (("1.25", "0.8"), ("0.8", "1.25"))


def delayed(path: Path, telephone: bool, delay_ms: float) -> Rates:
    y, sr = sox_load(path, telephone=telephone)
    silence = np.zeros(int(round(sr * delay_ms / 1000.0)), dtype=np.float32)
    return pipeline_speaker(np.concatenate([silence, y]), sr).rate


def tempo(path: Path, telephone: bool, factors: tuple[str, ...]) -> Rates:
    effects = tuple(arg for f in factors for arg in ("tempo", "-s", f))
    return pipeline_speaker(*sox_load(path, telephone=telephone, effects=effects)).rate


def main() -> None:
    corpus = require_corpus()
    changes = [f"delay {d:.1f} ms" for d in DELAYS_MS]
    changes += [f"{f}x" for f in NEAR_1X] + [f"{a}x {b}x" for a, b in ROUND_TRIPS]
    offs: dict[str, list[tuple[float, float]]] = {"delay": [], "near 1x": [], "round trip": []}
    print(
        "syllables before > after, and articulation rate after / before "
        f"(! = off by more than {TOLERANCE:.0%})\n"
    )
    print(f"{'recording':14s} {'band':6s} " + " ".join(f"{c:>16s}" for c in changes))
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in recordings(corpus, short_only=False).items():
            joined = Path(tmp) / "joined.wav"
            cmd = ["sox", "-D", *map(str, files), "-r", "16000", "-c", "1", "-b", "16", str(joined)]
            subprocess.run(cmd, check=True, capture_output=True)
            for telephone in (False, True):
                base = pipeline_speaker(*sox_load(joined, telephone=telephone)).rate
                after = [("delay", 1.0, delayed(joined, telephone, d)) for d in DELAYS_MS]
                after += [("near 1x", float(f), tempo(joined, telephone, (f,))) for f in NEAR_1X]
                after += [("round trip", 1.0, tempo(joined, telephone, f)) for f in ROUND_TRIPS]
                cells = []
                for kind, factor, r in after:
                    n_ratio = r.syllables / base.syllables
                    art = r.articulation_rate_syl_per_s / base.articulation_rate_syl_per_s / factor
                    offs[kind].append((abs(n_ratio - 1.0), abs(art - 1.0)))
                    flag = " " if abs(art - 1.0) <= TOLERANCE else "!"
                    cells.append(f"{base.syllables:3d}>{r.syllables:<3d} {art:6.3f}{flag}")
                band = "8k tel" if telephone else "16k"
                print(f"{name:14s} {band:6s} " + " ".join(f"{c:>16s}" for c in cells))
    print()
    for kind, pairs in offs.items():
        arr = np.array(pairs)
        for col, key in enumerate(("syllables", "articulation")):
            print(
                f"{kind:10s} {key:12s}: {int(np.sum(arr[:, col] <= TOLERANCE))}/{arr.shape[0]} "
                f"ratios within {TOLERANCE:.0%} of 1; worst |ratio - 1| = {arr[:, col].max():.3f}"
            )


if __name__ == "__main__":
    main()
