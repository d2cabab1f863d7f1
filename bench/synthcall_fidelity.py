"""How faithfully do rendered synthetic calls carry what was planted?

    python bench/synthcall_fidelity.py [--n 3] [--duration-s 180] [--seed 0]
                                       [--correction-steps 1] [--tolerance 1.0]

Prints (1) planting error per utterance: measured (pyin on the clean utterance) minus planned
median f0 (st), f0 sd (st) and articulation rate (syll/s); (2) for 'follow' calls (customer
follows agent) and 'independent' calls, the exchange correlation r(leader's turn-final value,
follower's next turn-initial value) in the plan and in the measured truth, per feature, each
value centred on its speaker's call mean;
(3) render time per call (cold cache for new texts). Needs espeak-ng.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import synthcall as sc  # noqa: E402


def _truth_value(call: sc.SynthCall, turn: sc.TurnTruth, feature: str, which: str) -> float:
    if feature == "speaking_rate":
        return turn.speaking_rate_per_s
    u = call.utterances[turn.utterances[0 if which == "initial" else -1]]
    return {
        "pitch_level": u.f0_median_st,
        "pitch_variability": u.f0_sd_st,
        "loudness": u.level_db,
        "articulation_rate": u.articulation_rate_per_s,
    }[feature]


def _centred(
    speaker: list[int], initial: list[float], final: list[float], follower: int
) -> list[tuple[float, float]]:
    """(leader final, follower next initial) per exchange, each minus its speaker's call mean
    (pooling calls with a male and a female voice would otherwise correlate levels)."""
    sp = np.asarray(speaker)
    ini, fin = np.asarray(initial, dtype=np.float64), np.asarray(final, dtype=np.float64)
    for s in (0, 1):
        m = float(np.nanmean(np.concatenate([ini[sp == s], fin[sp == s]])))
        ini[sp == s] -= m
        fin[sp == s] -= m
    return [
        (float(fin[k - 1]), float(ini[k]))
        for k in range(1, len(sp))
        if sp[k] == follower and sp[k - 1] != follower
    ]


def _exchange_pairs(call: sc.SynthCall, feature: str, follower: int) -> list[tuple[float, float]]:
    main = [t for t in call.turns if not t.backchannel]
    return _centred(
        [t.speaker for t in main],
        [_truth_value(call, t, feature, "initial") for t in main],
        [_truth_value(call, t, feature, "final") for t in main],
        follower,
    )


def _plan_pairs(turns: list[sc.TurnSpec], feature: str, follower: int) -> list[tuple[float, float]]:
    v = sc.planned_turn_values(turns, feature)
    return _centred([int(s) for s in v["speaker"]], list(v["initial"]), list(v["final"]), follower)


def _r(pairs: list[tuple[float, float]]) -> float:
    a = np.asarray(pairs, dtype=np.float64)
    a = a[np.isfinite(a).all(axis=1)]
    return float(np.corrcoef(a[:, 0], a[:, 1])[0, 1]) if len(a) > 3 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--duration-s", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--correction-steps", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=1.0)
    args = ap.parse_args()
    if not sc.espeak_available():
        print("espeak-ng is not on PATH", file=sys.stderr)
        return 2
    errs: dict[str, list[float]] = {"pitch_st": [], "sd_st": [], "rate": []}
    times = []
    print(f"{'kind':<12} {'feature':<18} {'pairs':>5} {'r plan':>7} {'r truth':>7}")
    for kind in ("follow", "independent"):
        for fi, feature in enumerate(sc.FEATURES):
            plan_pairs: list[tuple[float, float]] = []
            truth_pairs: list[tuple[float, float]] = []
            for i in range(args.n):
                rng = np.random.default_rng([args.seed, fi, i, kind == "follow"])
                turns = sc.plan_call(
                    kind,
                    duration_s=args.duration_s,
                    rng=rng,
                    follower="customer" if kind == "follow" else None,
                    feature=feature if kind == "follow" else None,
                )
                t0 = time.perf_counter()
                call = sc.render_call(
                    turns,
                    rng=rng,
                    correction_steps=args.correction_steps,
                    tolerance=args.tolerance,
                )
                times.append((time.perf_counter() - t0, call.duration_s))
                plan_pairs += _plan_pairs(turns, feature, 1)
                truth_pairs += _exchange_pairs(call, feature, 1)
                if kind == "follow" and fi == 0 or kind == "independent":
                    for u in call.utterances:
                        if u.backchannel:
                            continue
                        errs["pitch_st"].append(
                            u.f0_median_st - float(sc.hz_to_st(u.planned_pitch_hz))
                        )
                        errs["sd_st"].append(u.f0_sd_st - u.planned_range_st)
                        errs["rate"].append(u.articulation_rate_per_s - u.planned_rate_syl_per_s)
            print(
                f"{kind:<12} {feature:<18} {len(truth_pairs):>5} {_r(plan_pairs):>7.2f} "
                f"{_r(truth_pairs):>7.2f}"
            )
    print("\nplanting error (measured - planned), utterances:", len(errs["pitch_st"]))
    for name, vals in errs.items():
        a = np.asarray(vals)
        a = a[np.isfinite(a)]
        print(
            f"  {name:<9} mean {a.mean():+.2f}  sd {a.std():.2f}  "
            f"p95 |err| {np.percentile(np.abs(a), 95):.2f}  max |err| {np.abs(a).max():.2f}"
        )
    t = np.asarray(times)
    print(
        f"\nrender: {len(t)} calls, median {np.median(t[:, 0]):.1f} s for "
        f"{np.median(t[:, 1]):.0f} s of call (cold cache for new texts)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
