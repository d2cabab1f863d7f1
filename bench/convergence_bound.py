"""How much convergence any test can find while keeping random walks within chance.

Usage::

    python bench/convergence_bound.py [--reps 2000] [--ipus 105,160,225] [--walk-sd 1.5]

bench/mirroring_sim.py's ``walk`` scenario (each speaker's level wanders as a random walk
whose sd at the end of the call is ``--walk-sd`` within-speaker sds) must be flagged on
at most 10 % of calls, and its ``converge`` / ``diverge`` rows (the distance between the
speakers changes linearly by ``--conv-sd`` = 5 within-speaker sds) found on 85 %. With
four features tested, 10 % of calls is at most ~2.6 % per feature. This script draws one
feature of both speakers as the simulator does (IPU-level AR(1) phi 0.7 of sd 1, white
measurement noise sd 0.5, ``--ipus`` values per speaker: ~105 at 7 min, ~225 at 15 min)
and computes, with every parameter *known*:

* ``GLS``: the trend test with the true error covariance under the walk (the best
  linear unbiased trend estimate; calibrated on the walk by construction);
* ``NP``: the Neyman-Pearson likelihood ratio of "walk, no trend" against "no walk,
  trend of conv-sd": the most powerful test of all for these two simple hypotheses, so
  its power bounds every test that keeps the walk at the same false-alarm rate.

Each threshold is set on the walk draws at the per-feature rate (two-sided 2.6 %); the
power is the share of convergence draws beyond it. No real test knows the parameters:
these are upper bounds.
"""

from __future__ import annotations

import argparse
import math

import numpy as np


def _covariances(n: int, walk_sd: float) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n)
    ar = 0.7 ** np.abs(idx[:, None] - idx[None, :]) + 0.25 * np.eye(n)
    walk = (walk_sd**2 / n) * (np.minimum(idx[:, None], idx[None, :]) + 1.0)
    return ar, ar + walk


def _draw(rng: np.random.Generator, chol: np.ndarray, mean: np.ndarray, reps: int) -> np.ndarray:
    return mean[None, :] + rng.standard_normal((reps, mean.size)) @ chol.T


def bound(n: int, walk_sd: float, conv_sd: float, reps: int, rate: float, seed: int) -> str:
    rng = np.random.default_rng([seed, n])
    s1, s0 = _covariances(n, walk_sd)  # H1: no walk; H0: walk
    l0, l1 = np.linalg.cholesky(s0), np.linalg.cholesky(s1)
    ramp = np.linspace(-0.5, 0.5, n)
    x = np.column_stack([np.ones(n), ramp])
    # each speaker moves conv_sd / 2 toward the other: the distance changes by conv_sd
    walk = [_draw(rng, l0, np.zeros(n), reps) for _ in range(2)]
    conv = [_draw(rng, l1, s * conv_sd / 2.0 * ramp, reps) for s in (1.0, -1.0)]

    def gls_z(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        si = np.linalg.inv(s0)
        xtx = x.T @ si @ x
        beta = np.linalg.solve(xtx, x.T @ si @ (a - c).T)
        return beta[1] / math.sqrt(2.0 * np.linalg.inv(xtx)[1, 1])

    def quad(chol: np.ndarray, resid: np.ndarray) -> np.ndarray:
        # r' S^-1 r with the speaker's level (intercept) fitted by GLS: levels are unknown
        w = np.linalg.solve(chol, resid.T)
        one = np.linalg.solve(chol, np.ones(n))
        return (w**2).sum(axis=0) - (one @ w) ** 2 / float(one @ one)

    def np_llr(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        # log p1 - log p0 summed over the two speakers (constant terms left out: the
        # threshold is set on the walk draws)
        out = np.zeros(a.shape[0])
        for v, s in ((a, 1.0), (c, -1.0)):
            out += -0.5 * quad(l1, v - s * conv_sd / 2.0 * ramp) + 0.5 * quad(l0, v)
        return out

    z_walk, z_conv = np.abs(gls_z(*walk)), gls_z(*conv)
    thr = float(np.quantile(z_walk, 1.0 - rate))
    gls_power = float(np.mean(z_conv > thr))
    llr_walk, llr_conv = np_llr(*walk), np_llr(*conv)
    thr_np = float(np.quantile(llr_walk, 1.0 - rate))
    np_power = float(np.mean(llr_conv > thr_np))
    return (
        f"{n:>6}{100 * rate:>10.1f}%{100 * gls_power:>11.1f}%{100 * np_power:>11.1f}%"
        f"   (GLS |z| threshold {thr:.2f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--ipus", default="105,160,225", help="IPUs per speaker, comma-separated")
    ap.add_argument("--walk-sd", type=float, default=1.5)
    ap.add_argument("--conv-sd", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=0.026, help="walk false alarms per feature")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(
        f"# walk sd {args.walk_sd}, convergence {args.conv_sd} sd, {args.reps} draws each; "
        "power at the walk's false-alarm rate per feature"
    )
    print(f"{'ipus':>6}{'walk FA':>11}{'GLS power':>12}{'NP bound':>12}")
    for n in (int(v) for v in args.ipus.split(",")):
        print(bound(n, args.walk_sd, args.conv_sd, args.reps, args.rate, args.seed))


if __name__ == "__main__":
    main()
