"""The line-based convergence test on two speakers' per-turn values alone: its false-alarm
rate without a trend (by persistence and number of values) and its power on a steady drift.

    python bench/convergence_calibration.py [--pairs 300] [--seed 5]

Each speaker's values: AR(1) deviations with ``phi`` (sd 0.3) plus measurement noise (sd
0.15), times uniform over 8 minutes; the two speakers' levels 1.5 apart (lines that do not
cross). Power: 26 values each, one speaker drifting ``--drift`` (default 1.5, five
turn-to-turn sds) toward a steady partner over 7 minutes. The table is the one in
docs/mirroring.md ("Persistence").
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp.mirroring.lines import line_convergence, speaker_lines  # noqa: E402


def turn_values(rng: np.random.Generator, n: int, drift: float, phi: float) -> np.ndarray:
    dev = np.empty(n)
    dev[0] = rng.normal(0.0, 0.3)
    for i in range(1, n):
        dev[i] = phi * dev[i - 1] + rng.normal(0.0, 0.3 * math.sqrt(1.0 - phi**2))
    return drift * np.linspace(0.0, 1.0, n) + dev + rng.normal(0.0, 0.15, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--drift", type=float, default=1.5)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    ps = []
    for _ in range(args.pairs):
        mover = (np.sort(rng.uniform(0, 420, 26)), 2.7 + turn_values(rng, 26, args.drift, 0.3))
        still = (np.sort(rng.uniform(0, 420, 26)), 4.9 + turn_values(rng, 26, 0.0, 0.3))
        result = line_convergence(*speaker_lines([mover, still]))
        ps.append(result[1] if result is not None and result[0] > 0 else 1.0)
    p = np.asarray(ps)
    print(f"# power, drift {args.drift} over 26 values toward a steady partner: "
          f"p < 0.05 {np.mean(p < 0.05):.1%}, p < 0.01 {np.mean(p < 0.01):.1%}, "
          f"p < 0.001 {np.mean(p < 0.001):.1%}")  # fmt: skip
    sizes = (26, 40, 80)
    print("# false alarms (p < 0.05), no trend, " + f"{args.pairs} pairs per cell")
    print(f"{'phi':>5}" + "".join(f"{f'{n} values':>12}" for n in sizes))
    for phi in (0.0, 0.5, 0.9):
        cells = []
        for n in sizes:
            rejected = tested = 0
            for _ in range(args.pairs):
                pair = [
                    (np.sort(rng.uniform(0, 480, n)), level + turn_values(rng, n, 0.0, phi))
                    for level in (0.0, 1.5)
                ]
                result = line_convergence(*speaker_lines(pair))
                if result is not None:
                    tested += 1
                    rejected += result[1] < 0.05
            cells.append(rejected / max(tested, 1))
        print(f"{phi:>5}" + "".join(f"{c:>12.1%}" for c in cells))


if __name__ == "__main__":
    main()
