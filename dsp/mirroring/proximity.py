"""Proximity: local (is the follower closer to the leader's adjacent turn than to the
leader's nearby non-adjacent turns) and global (distance between the speakers' means,
against sham partners when a batch provides them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.mirroring.exchanges import Exchanges, Turns, speaker_turn_means
from dsp.mirroring.inputs import FloatArray, IntArray, ShamCall, unit_series
from dsp.mirroring.stats import acf, t_sf, zscore

#: Local proximity of one feature: mean difference, p, usable exchanges, reason if None.
LocalProximity = tuple[float | None, float | None, int, str | None]
#: Global proximity of one feature: distance, sham z, reason if None.
GlobalProximity = tuple[float | None, float | None, str | None]


@dataclass(frozen=True, eq=False)
class ProximityRows:
    """The rows of one local proximity test, both directions pooled in test order: the
    used rows by follower turn start (the series the t-test and its autocorrelation read),
    then the unused ones (difference not finite)."""

    follower_turn: IntArray  # merged-turn index of the follower's answering turn
    leader_turn: IntArray  # the leader's turn just before (the adjacent one)
    start_s: FloatArray  # start of the follower's turn, s
    y: FloatArray  # follower turn-initial value (z-scored per speaker for loudness)
    x: FloatArray  # leader's adjacent turn-final value (likewise)
    adjacent: FloatArray  # -|y - x|
    nonadjacent: FloatArray  # mean of -|y - x_j| over the leader's turns 2..offsets away
    n_nonadjacent: IntArray  # how many such turns had a value
    diff: FloatArray  # adjacent - nonadjacent
    used: npt.NDArray[np.bool_]


def local_proximity(
    turns: Turns,
    exs: Sequence[Exchanges],
    name: str,
    *,
    offsets: int,
    min_exchanges: int,
    zscored: bool,
    rows: dict[str, ProximityRows] | None = None,
) -> tuple[float | None, float | None, int, str | None]:
    """Adjacent minus non-adjacent similarity of follower to leader, t-tested with a
    Bartlett effective size; ``rows[name]`` receives the test's rows
    (:class:`ProximityRows`)."""
    initial = turns.initial[name]
    final = turns.final[name]
    if zscored:
        initial = initial.copy()
        final = final.copy()
        for s in (0, 1):
            m = turns.speaker == s
            both = zscore(np.concatenate([initial[m], final[m]]))
            initial[m], final[m] = both[: m.sum()], both[m.sum() :]
    diffs: list[FloatArray] = []
    times: list[FloatArray] = []
    parts: list[tuple[IntArray, IntArray, FloatArray, FloatArray, FloatArray, FloatArray, IntArray]]
    parts = []
    for ex in exs:
        if ex.follower_turn.size == 0:
            continue
        leader = int(turns.speaker[ex.leader_turn[0]])
        leader_turns = np.flatnonzero(turns.speaker == leader)
        leader_final = final[leader_turns]
        y = initial[ex.follower_turn]
        x = final[ex.leader_turn]
        adj = -np.abs(y - x)
        js = np.array([o for o in range(-offsets, offsets + 1) if abs(o) >= 2])
        cand = ex.leader_rank[:, None] + js[None, :]
        valid = (cand >= 0) & (cand < leader_turns.size)
        other = np.where(valid, leader_final[np.clip(cand, 0, leader_turns.size - 1)], np.nan)
        sims = -np.abs(y[:, None] - other)
        with np.errstate(all="ignore"):
            cnt = np.isfinite(sims).sum(axis=1)
            non = np.where(cnt > 0, np.nansum(sims, axis=1) / np.maximum(cnt, 1), np.nan)
        diffs.append(adj - non)
        times.append(turns.start_s[ex.follower_turn])
        parts.append((ex.follower_turn, ex.leader_turn, y, x, adj, non, cnt))
    if not diffs:
        return None, None, 0, "no exchanges"
    d = np.concatenate(diffs)
    t = np.concatenate(times)
    ok = np.isfinite(d)
    if rows is not None:
        order = np.concatenate([np.flatnonzero(ok)[np.argsort(t[ok])], np.flatnonzero(~ok)])
        cols = [np.concatenate(c)[order] for c in zip(*parts, strict=True)]
        rows[name] = ProximityRows(
            follower_turn=cols[0],
            leader_turn=cols[1],
            start_s=t[order],
            y=cols[2],
            x=cols[3],
            adjacent=cols[4],
            nonadjacent=cols[5],
            n_nonadjacent=cols[6].astype(np.int64),
            diff=d[order],
            used=ok[order],
        )
    rho_pair = (speaker_turn_means(turns, name, 0), speaker_turn_means(turns, name, 1))
    return adjacency_test(d, t, min_exchanges=min_exchanges, speaker_series=rho_pair)


def adjacency_test(
    d: FloatArray,
    t: FloatArray,
    *,
    min_exchanges: int,
    speaker_series: tuple[FloatArray, FloatArray] | None = None,
) -> LocalProximity:
    """Mean of the adjacent-minus-non-adjacent differences ``d`` (NaN = unused) of the
    exchanges starting at ``t``, t-tested with a Bartlett effective size: (mean, p, usable
    exchanges, reason if None)."""
    ok = np.isfinite(d)
    n = int(ok.sum())
    if n < min_exchanges:
        return None, None, n, f"{n} usable exchanges (fewer than {min_exchanges})"
    d = d[ok][np.argsort(t[ok])]
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd <= 0:
        return None, None, n, "constant values"
    max_lag = max(1, min(10, n // 5))
    rho = acf(d, max_lag)
    inflation = 1.0 + 2.0 * float(np.sum(rho))
    # Two independent but autocorrelated speakers drift together by chance for a while; that
    # shifts every difference of the call the same way, which their own autocorrelation
    # (taken about their mean) does not show. Bartlett's variance of a cross-product of two
    # autocorrelated series counts it: the larger of the two inflations is used.
    if speaker_series is not None:
        rho_agent, rho_customer = (acf(series, max_lag) for series in speaker_series)
        inflation = max(inflation, 1.0 + 2.0 * float(np.sum(rho_agent * rho_customer)))
    n_eff = float(np.clip(n / max(inflation, 1e-9), 3.0, n))
    tstat = mean / (sd / math.sqrt(n_eff))
    p = float(2.0 * t_sf(abs(tstat), n_eff - 1.0))
    return mean, p, n, None


# --------------------------------------------------------------------------------------
# Window-level statistics
# --------------------------------------------------------------------------------------


def series_mean(values: FloatArray | None) -> float | None:
    """Mean of a speaker's finite unit values (None without any)."""
    finite = None if values is None else values[np.isfinite(values)]
    return float(finite.mean()) if finite is not None and finite.size else None


def global_proximity(
    own: Sequence[FloatArray | None], shams: Sequence[ShamCall], name: str
) -> GlobalProximity:
    """Distance between the two speakers' means of ``name`` (``own``: agent's and
    customer's unit values) and, with at least 3 sham distances (this call's agent with
    each sham customer, each sham agent with this customer), its z against them."""
    own_mean = [series_mean(vals) for vals in own]
    sham_glob: list[float] = []
    for sham in shams:
        sham_mean = [series_mean(unit_series(u, name)[1]) for u in (sham.agent, sham.customer)]
        for m1, m2 in ((own_mean[0], sham_mean[1]), (sham_mean[0], own_mean[1])):
            if m1 is not None and m2 is not None:
                sham_glob.append(abs(m1 - m2))
    ma, mc = own_mean
    if ma is None or mc is None:
        return None, None, "a speaker has no value"
    dist = abs(ma - mc)
    gz = None
    if len(sham_glob) >= 3 and float(np.std(sham_glob, ddof=1)) > 0:
        gz = (dist - float(np.mean(sham_glob))) / float(np.std(sham_glob, ddof=1))
    return dist, gz, None
