"""Power and false-positive rate of dsp.mirroring on feature-level synthetic calls.

Usage::

    python bench/mirroring_eval.py [--calls 200] [--seed 0] [--strength 0.5] [--conv-sd 5]
                                   [--shams 8] [--quick] [--only follow,converge]
                                   [--plant edge|turn] [--duration 300]

Each scenario simulates ``--calls`` calls of 3-15 minutes (bench/mirroring_sim.py: AR(1)
prosody walks per speaker, measurement noise, NaNs, backchannels, 16 s / 8 s windows) and
runs ``analyze_mirroring`` on each. Printed per scenario:

* planted ``follow`` (``--only follow``: the five voice features; ``--only timing``: pause
  and latency): ``hit`` = the planted feature's ``follower`` is the planted one;
  ``wrong`` = the other speaker named; ``off`` = another feature flagged (mirrored,
  follower or convergence direction).
* planted ``converge`` / ``diverge``: ``hit`` = that feature's convergence direction is the
  planted one; ``wrong`` = the opposite direction.
* planted rows, ``raw p``: the planted test alone (the follower's direction, or
  convergence) has ``p < alpha`` with the planted sign before the call's correction across
  its tests: the gap to ``hit`` is what the correction (and the follower rule) costs.
* independent scenarios: ``FP`` = the call has any feature ``mirrored``, any ``follower`` or
  any convergence direction other than 'none' (the per-call false alarm rate);
  ``any p_adj`` = any test of the call at all below alpha after correction.

Also prints the mean hit rate over the planted rows of the run, the median analysis time
per call and the score distribution on independent calls (should centre on 50).

Each row draws its calls from ``[seed, position of the row in this run]``: the same
``--only`` gives the same calls, another selection other calls.

Measured (seed 0, 3-15 min calls, no shams), with the command of each line:

* false alarms per call (``--calls 200 --only independent,strong_ac,drift,walk``):
  independent 4.5%, strong autocorrelation 4.5%, shared drift 5.0%; stress case ``walk``
  (large independent random walks: the speakers really do get closer or further apart)
  30.5%; ``--calls 200 --only walk --shams 8``: 5.0%. Strong autocorrelation over more
  draws: ``--calls 300 --seed S --only strong_ac`` for S = 0-7: 5.7, 7.7, 7.7, 8.0, 7.3,
  6.0, 6.7, 7.7%; ``--calls 300 --seed S --only independent,strong_ac`` (other calls: the
  row is second): 7.7, 11.3, 10.0, 12.3, 7.3, 7.7, 8.7, 11.0% (independent 2.0-5.0%);
  8.3% over the 4800 calls. (Before pause and latency joined the tests, commit b9d59cc:
  5.0 / 5.5 / 5.0 / 31% on the first line; 5.7, 8.3, 8.0, 7.3% for S = 0-3 with
  ``--only strong_ac``.)
* ``--strength 0.8 --only follow,converge,diverge`` (200 calls per row): right follower
  named: loudness 96-98%, pitch level 94-94.5%, pitch variability 81.5-83.5%, articulation
  rate 74-78%, speaking rate 74.5% (84.9% over the 10 rows; 82.2% when a follower also
  needed its r to be significantly larger than the other direction's, commit 05b6303);
  calls over 10 min 94-100%, under 6 min 30-92%; the wrong follower 0-1%. Convergence /
  divergence (``--conv-sd 5``), right direction: 65-77.5% (86-97% over 10 min; 55-74% and
  73-95% at commit 4638023, with the former two-lag persistence estimate); the opposite
  direction never. Over the 18 rows: 78.4% (78.5% at commit b9d59cc, before the timing
  features; 76.9% at commit 05b6303). ``raw p`` (the planted test alone, before the
  correction across the call's ~30 tests): following 89.5-99%, convergence / divergence
  85.5-93.5%: most of what is missed, the correction costs.
* Following planted as a *copy* of the leader's previous turn (``--strength 1.0``):
  ``--strength 1.0 --only follow,converge,diverge`` 81.2% over the 18 rows (following
  90.0% over the 10 rows, 80.5-99%; the convergence rows are the ones above: strength does
  not enter them); with ``--plant turn`` (the whole turn copies the leader's turn) 81.6%
  at seed 0 and 81.1% with ``--seed 1`` (following 90.6% and 91.5%, convergence /
  divergence 70.3% and 68.1%).
* ``--strength 0.8 --only timing`` (pause and latency following, exact timing): right
  follower named: latency 100%, pause 68.5% (under 6 min 11-12%: a pause exchange needs
  turns of two IPUs or more on both sides).
* ``--calls 100 --strength 0.8 --only follow [--plant turn]``, mean over the 10 rows:
  84.1% with edge planting, 86.2% when the follower's whole turn copies the leader's turn
  mean (81.4% and 82.8% at commit 05b6303; 80.0% and 71.9% with
  ``dsp.mirroring.exchanges._EDGE_WEIGHT = 1``, edge IPUs only, when the half/half turn
  values were chosen). (Measured before the timing features.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mirroring_sim import simulate_call  # noqa: E402

from dsp.mirroring import (  # noqa: E402
    PROSODY_FEATURES,
    TEMPO_FEATURES,
    TIMING_FEATURES,
    TONE_FEATURES,
    DirectionScore,
    MirroringResult,
    ShamCall,
    analyze_mirroring,
)
from dsp.mirroring.results import VERDICTS  # noqa: E402

INDEPENDENT = ("independent", "strong_ac", "drift", "walk")
LEVEL_FEATURES = tuple(f for f in PROSODY_FEATURES if f != "loudness")


def _flags(res: MirroringResult, skip: str | None = None) -> bool:
    for f in res.features:
        if f.name == skip:
            continue
        if f.mirrored or f.follower is not None:
            return True
        if f.convergence.direction in ("converging", "diverging"):
            return True
    return False


def _any_p(res: MirroringResult) -> bool:
    for f in res.features:
        for p in (
            f.agent_follows_customer.p_adj,
            f.customer_follows_agent.p_adj,
            f.windowed.p_adj,
            f.convergence.p_adj,
            f.proximity.local_p_adj,
        ):
            if p is not None and p < res.alpha:
                return True
    return False


def _raw_hit(p: float | None, signed: float | None, alpha: float) -> bool:
    """The planted test alone, before the call's multiple-testing correction: p < alpha
    with the planted sign (``signed`` > 0)."""
    return p is not None and signed is not None and p < alpha and signed > 0


def _pct(xs: list[bool]) -> str:
    return f"{100 * float(np.mean(xs)):.0f}%" if xs else "-"


def _print_scores(label: str, vals: list[DirectionScore]) -> None:
    """The score distribution and the verdicts' shares (the README's reading of a score)."""
    if not vals:
        return
    sc = np.asarray([v.score for v in vals])
    verdicts = {k: float(np.mean([v.verdict == k for v in vals])) for k in VERDICTS}
    print(
        f"# {label}: {sc.size} scores, score 0: {100 * np.mean(sc == 0):.1f}%, "
        f"> 10: {100 * np.mean(sc > 10):.1f}%, > 30: {100 * np.mean(sc > 30):.1f}%, "
        f"p90 {np.percentile(sc, 90):.1f}, max {sc.max():.1f}; "
        + ", ".join(f"{k} {100 * share:.1f}%" for k, share in verdicts.items())
    )


def run(
    calls: int,
    seed: int,
    strength: float,
    conv_sd: float,
    n_shams: int,
    quick: bool,
    only: str | None = None,
    duration_s: float | None = None,
    plant: str = "edge",
    min_duration_s: float = 180.0,
    walk_sd: float | None = None,
) -> None:
    # (name for --only, scenario, feature, follower)
    scenarios: list[tuple[str, str, str | None, str | None]] = [
        (kind, kind, None, None) for kind in INDEPENDENT
    ]
    feats = ("pitch_level", "speaking_rate") if quick else PROSODY_FEATURES
    for f in feats:
        for who in ("agent", "customer"):
            scenarios.append(("follow", "follow", f, who))
    for f in LEVEL_FEATURES if not quick else ("pitch_level",):
        scenarios.append(("converge", "converge", f, None))
        scenarios.append(("diverge", "diverge", f, None))
    for f in TIMING_FEATURES if not quick else ():
        for who in ("agent", "customer"):
            scenarios.append(("timing", "follow", f, who))

    if only:
        scenarios = [sc for sc in scenarios if sc[0] in only.split(",")]
    print(
        f"# {calls} calls per scenario, seed {seed}, follow strength {strength}, "
        f"convergence {conv_sd} sd, shams per call: {n_shams or 'none'}"
    )
    sham_pool: list[ShamCall] = []
    if n_shams:
        pool_rng = np.random.default_rng([seed, 999])
        for _ in range(max(n_shams * 4, 40)):
            c = simulate_call(pool_rng, scenario="independent")
            sham_pool.append(ShamCall(c.agent, c.customer, c.windows))
    header = f"{'scenario':<12}{'feature':<19}{'follower':<10}{'hit/FP':>8}{'wrong':>8}"
    print(
        header + f"{'off':>8}{'any p_adj':>11}{'raw p':>8}{'<6 min':>8}{'>10 min':>8}{'ms/call':>9}"
    )
    times: list[float] = []
    planted_hits: list[float] = []  # hit rate of each planted row
    indep_scores: list[DirectionScore] = []
    tempo_scores: list[DirectionScore] = []
    planted_scores: list[tuple[str, str | None, str | None, DirectionScore]] = []
    for s_i, (_, scenario, feature, follower) in enumerate(scenarios):
        rng = np.random.default_rng([seed, s_i])
        hit = wrong = off = anyp = raw = 0
        by_len: dict[str, list[bool]] = {"short": [], "long": []}
        ms: list[float] = []
        own: list[ShamCall] = []
        for i in range(calls):
            call = simulate_call(rng, scenario=scenario, feature=feature, follower=follower,
                                 strength=strength, conv_sd=conv_sd,
                                 duration_s=duration_s, plant=plant,
                                 min_duration_s=min_duration_s, walk_sd=walk_sd)  # fmt: skip
            shams: list[ShamCall] = []
            if n_shams:
                # independent scenarios: other calls of the same kind (a batch); planted
                # ones: calls from an independent batch
                src = own if scenario in INDEPENDENT else sham_pool
                if len(src) < n_shams:
                    src = src + sham_pool
                shams = [src[(i + j) % len(src)] for j in range(n_shams)]
                own.append(ShamCall(call.agent, call.customer, call.windows))
            t0 = time.perf_counter()
            res = analyze_mirroring(call.agent, call.customer, call.windows, shams=shams)
            ms.append(1000 * (time.perf_counter() - t0))
            anyp += _any_p(res)
            bucket = "short" if call.duration_s < 360 else "long" if call.duration_s > 600 else ""
            if scenario in INDEPENDENT:
                hit += _flags(res)
                if bucket:
                    by_len[bucket].append(_flags(res))
                for v in (res.scores.tone_agent, res.scores.tone_customer):
                    if v is not None:
                        indep_scores.append(v)
                for v in (res.scores.tempo_agent, res.scores.tempo_customer):
                    if v is not None:
                        tempo_scores.append(v)
                continue
            for v in (res.scores.tone_agent, res.scores.tone_customer,
                      res.scores.tempo_agent, res.scores.tempo_customer):  # fmt: skip
                if v is not None:
                    planted_scores.append((scenario, feature, follower, v))
            fm = res.feature(feature or "")
            if scenario == "follow":
                ok = fm.follower == follower
                wrong += fm.follower not in (None, follower)
                sync = (
                    fm.agent_follows_customer if follower == "agent" else fm.customer_follows_agent
                )
                raw += _raw_hit(sync.p, sync.r, res.alpha)
            else:
                want = "converging" if scenario == "converge" else "diverging"
                got = fm.convergence.direction
                ok = got == want
                wrong += got in ("converging", "diverging") and got != want
                sign = 1.0 if scenario == "converge" else -1.0
                value = fm.convergence.value
                raw += _raw_hit(
                    fm.convergence.p, None if value is None else sign * value, res.alpha
                )
            hit += ok
            if bucket:
                by_len[bucket].append(ok)
            off += _flags(res, skip=feature)
        times.extend(ms)
        label = "FP" if scenario in INDEPENDENT else "hit"
        if scenario not in INDEPENDENT:
            planted_hits.append(hit / calls)
        print(
            f"{scenario:<12}{feature or '-':<19}{follower or '-':<10}"
            f"{100 * hit / calls:>7.1f}%{100 * wrong / calls:>7.1f}%{100 * off / calls:>7.1f}%"
            f"{100 * anyp / calls:>10.1f}%"
            f"{'-' if scenario in INDEPENDENT else f'{100 * raw / calls:.1f}%':>8}"
            f"{_pct(by_len['short']):>8}{_pct(by_len['long']):>8}"
            f"{np.median(ms):>9.1f}   ({label})"
        )
        sys.stdout.flush()
    if planted_hits:
        print(
            f"# planted rows: {len(planted_hits)}, mean right follower / direction "
            f"{100 * float(np.mean(planted_hits)):.1f}%"
        )
    for dim, vals in (("tone", indep_scores), ("tempo", tempo_scores)):
        _print_scores(f"{dim} scores on independent calls", vals)
    follows = [
        v
        for scenario, feature, follower, v in planted_scores
        if scenario == "follow" and feature in TONE_FEATURES + TEMPO_FEATURES
    ]
    if follows:
        _print_scores("scores of every direction on calls with planted following", follows)
    print(f"# median analysis time {np.median(times):.1f} ms/call, max {np.max(times):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strength", type=float, default=0.5)
    ap.add_argument("--conv-sd", type=float, default=5.0, help="planted distance change")
    ap.add_argument("--shams", type=int, default=0, help="sham partner calls per call")
    ap.add_argument("--quick", action="store_true", help="fewer scenarios")
    ap.add_argument("--only", help="comma-separated scenario kinds, e.g. follow,converge")
    ap.add_argument("--duration", type=float, help="call length in s (default 3-15 min)")
    ap.add_argument(
        "--min-duration",
        type=float,
        default=180.0,
        help="shortest call in s when --duration is not given (calls up to 15 min)",
    )
    ap.add_argument(
        "--walk-sd",
        type=float,
        help="walk / drift scenarios: the random walks' sd at the end of the call, in "
        "within-speaker sds (default 1.5 / 0.5)",
    )
    ap.add_argument(
        "--plant",
        choices=("edge", "turn"),
        default="edge",
        help="follow: leader's turn-final value into the follower's first IPU (edge) or "
        "leader's turn mean into the follower's whole turn (turn)",
    )
    args = ap.parse_args()
    run(
        args.calls, args.seed, args.strength, args.conv_sd, args.shams, args.quick, args.only,
        args.duration, args.plant, args.min_duration, args.walk_sd,
    )  # fmt: skip


if __name__ == "__main__":
    main()
