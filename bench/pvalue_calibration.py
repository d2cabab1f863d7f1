"""Are the mirroring tests' raw p-values calibrated on independent speakers?

    python bench/pvalue_calibration.py [--calls 300] [--duration-s 270] [--scenario independent]
    python bench/pvalue_calibration.py --folder bench/out/calls_indep_c4 [--folder ...]

Runs ``dsp.mirroring.analyze_mirroring`` on independent calls, simulated
(``bench/mirroring_sim.py``, one scenario) or the ``independent*.wav`` calls of folders
written by ``bench/make_calls.py`` (analysed from audio), and prints, per kind of test, the
share of raw p-values below 0.05, 0.01 and 0.001. A calibrated test gives about 5 %, 1 % and
0.1 %; the call's correction across ~30 tests works at the small end, so the tail matters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mirroring_sim import SCENARIOS, simulate_call  # noqa: E402

from dsp import pipeline  # noqa: E402
from dsp.mirroring import MirroringResult, analyze_mirroring  # noqa: E402

LEVELS = (0.05, 0.01, 0.001)


def raw_p_values(result: MirroringResult) -> dict[str, list[float]]:
    """Raw p of each test of one call, by kind of test."""
    out: dict[str, list[float]] = {}
    for f in result.features:
        tests = (
            ("local proximity", f.proximity.local_p),
            ("directional synchrony", f.agent_follows_customer.p),
            ("directional synchrony", f.customer_follows_agent.p),
            ("windowed synchrony", f.windowed.p),
            ("convergence", f.convergence.p),
        )
        for kind, p in tests:
            if p is not None:
                out.setdefault(kind, []).append(float(p))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="simulated calls")
    ap.add_argument("--duration-s", type=float, default=270.0, help="simulated call length")
    ap.add_argument("--scenario", default="independent", choices=SCENARIOS)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--folder", type=Path, action="append", help="calls from make_calls.py")
    args = ap.parse_args()
    results: list[MirroringResult] = []
    if args.folder:
        paths = [p for folder in args.folder for p in sorted(folder.glob("independent*.wav"))]
        if not paths:
            sys.exit("no independent*.wav calls in the folders: make them with make_calls.py")
        for path in paths:
            measured = pipeline.analyze(path).mirroring
            assert measured is not None
            results.append(measured)
        source = f"{len(paths)} espeak calls from {', '.join(map(str, args.folder))}"
    else:
        rng = np.random.default_rng(args.seed)
        for _ in range(args.calls):
            call = simulate_call(rng, scenario=args.scenario, duration_s=args.duration_s)
            results.append(analyze_mirroring(call.agent, call.customer, call.windows))
        source = f"{args.calls} simulated '{args.scenario}' calls of {args.duration_s:.0f} s"
    by_kind: dict[str, list[float]] = {}
    for result in results:
        for kind, ps in raw_p_values(result).items():
            by_kind.setdefault(kind, []).extend(ps)
    print(f"# {source}")
    print("| test | p-values | " + " | ".join(f"p < {a:g}" for a in LEVELS) + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    for kind, ps in by_kind.items():
        a = np.asarray(ps)
        shares = " | ".join(f"{100 * np.mean(a < level):.2f} %" for level in LEVELS)
        print(f"| {kind} | {a.size} | {shares} |")


if __name__ == "__main__":
    main()
