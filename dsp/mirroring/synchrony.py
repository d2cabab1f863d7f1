"""Synchrony: directional (does the follower's turn-initial value track the leader's
preceding turn-final value, given the follower's own past) and windowed (prewhitened
lagged cross-correlation of the two speakers' window series)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.mirroring.exchanges import Exchanges, Turns, take
from dsp.mirroring.inputs import FloatArray, IntArray
from dsp.mirroring.results import DirectionalSync, WindowedSync
from dsp.mirroring.stats import (
    bartlett_n_eff,
    corr,
    corr_t_p,
    is_constant,
    residualize,
    signed_z,
)

#: A directional test's residuals for the scores' chance correlation: the follower turns
#: used (merged-turn indices), then the follower's and the leader's residuals.
Residuals = tuple[IntArray, FloatArray, FloatArray]


def _impute(x: FloatArray) -> FloatArray:
    """NaN replaced by the mean of the finite values (0 when none)."""
    ok = np.isfinite(x)
    fill = float(x[ok].mean()) if ok.any() else 0.0
    return np.where(ok, x, fill)


#: Turns in the follower's slow-level covariate of the directional test.
SYNC_HISTORY_SPAN = 4


#: Names of the directional test's covariates, in column order of :class:`SyncDesign`.
SYNC_COVARIATES = ("follower_prev_final", "follower_history_mean")


@dataclass(frozen=True, eq=False)
class SyncDesign:
    """The rows of one directional test: every exchange of the direction, the values the
    test reads and which rows (and covariates) it used. :func:`directional_sync` computes
    its statistic from exactly this (``dsp.mirroring.evidence`` writes it out)."""

    follower_turn: IntArray  # (E,) merged-turn index of the follower's answering turn
    leader_turn: IntArray  # (E,) the leader's turn just before
    start_s: FloatArray  # (E,) start of the follower's turn, s
    y: FloatArray  # (E,) follower turn-initial value
    x: FloatArray  # (E,) leader turn-final value
    covariates: FloatArray  # (E, 2) SYNC_COVARIATES; the history mean imputed over used rows
    used: npt.NDArray[np.bool_]  # (E,) y, x and the previous turn-final value all finite
    kept: tuple[int, ...]  # covariate columns kept (linearly independent on the used rows)


def sync_design(turns: Turns, ex: Exchanges, name: str, history: FloatArray) -> SyncDesign:
    """The directional test's design for ``name`` in the direction of ``ex``."""
    y = take(turns.initial[name], ex.follower_turn)
    x = take(turns.final[name], ex.leader_turn)
    z1 = take(turns.final[name], ex.prev_turn)
    ok = np.isfinite(y) & np.isfinite(x) & np.isfinite(z1)
    hist = np.full(y.size, np.nan)
    hist[ok] = _impute(take(history, ex.prev_turn)[ok])
    cov = np.column_stack([z1, hist]) if y.size else np.zeros((0, 2))
    n = int(ok.sum())
    # Keep only linearly independent covariates (1-IPU turns make mean == final).
    keep: list[int] = []
    for j in range(cov.shape[1] if n else 0):
        trial = np.column_stack([np.ones(n), cov[ok][:, keep + [j]]])
        if np.linalg.matrix_rank(trial) == trial.shape[1]:
            keep.append(j)
    return SyncDesign(
        follower_turn=ex.follower_turn,
        leader_turn=ex.leader_turn,
        start_s=turns.start_s[ex.follower_turn],
        y=y,
        x=x,
        covariates=cov,
        used=ok,
        kept=tuple(keep),
    )


def directional_sync(
    turns: Turns,
    ex: Exchanges,
    name: str,
    history: FloatArray,
    *,
    min_exchanges: int,
    residuals: dict[str, tuple[IntArray, FloatArray, FloatArray]] | None = None,
    design: dict[str, SyncDesign] | None = None,
) -> DirectionalSync:
    """Partial correlation of follower-initial with leader-final given the follower's past.

    Covariates: the follower's previous turn-final value (short memory) and the mean of
    the follower's last :data:`SYNC_HISTORY_SPAN` turn means (slow level); t-test with
    ``df = n - 2 - covariates`` (no effective-sample-size correction: the plain df is
    calibrated). ``residuals[name]`` receives the follower turns used and both residuals;
    ``design[name]`` the test's rows (:class:`SyncDesign`).
    """
    d = sync_design(turns, ex, name, history)
    if design is not None:
        design[name] = d
    ok = d.used
    n = int(ok.sum())

    def none(reason: str) -> DirectionalSync:
        return DirectionalSync(None, None, None, n, None, reason)

    if n < min_exchanges:
        return none(f"{n} usable exchanges (fewer than {min_exchanges})")
    yy, xx = d.y[ok], d.x[ok]
    if is_constant(yy) or is_constant(xx):
        return none("constant values")
    cov = d.covariates[ok][:, list(d.kept)]
    u = residualize(yy, cov)
    v = residualize(xx, cov)
    r = corr(u, v)
    if not math.isfinite(r):
        return none("no variation left after controlling for the speakers' past")
    df = n - 2 - cov.shape[1]
    if df < 3:
        return none(
            f"{n} usable exchanges leave {df} degrees of freedom after the "
            f"{cov.shape[1]} own-past covariates (fewer than 3)"
        )
    p = corr_t_p(r, df)
    if residuals is not None:
        residuals[name] = (ex.follower_turn[ok], u, v)
    return DirectionalSync(r, p, None, n, signed_z(r, p), None, df=df)


def _prewhiten(x: FloatArray, t: FloatArray) -> FloatArray:
    """Linear detrend then AR(1) residuals; NaN where undefined."""
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if ok.sum() < 4:
        return out
    coef = np.polyfit(t[ok], x[ok], 1)
    d = np.where(ok, x - np.polyval(coef, t), np.nan)
    prev, cur = d[:-1], d[1:]
    pair = np.isfinite(prev) & np.isfinite(cur)
    den = float(np.dot(prev[pair], prev[pair]))
    phi = float(np.clip(np.dot(prev[pair], cur[pair]) / den, -0.95, 0.95)) if den > 0 else 0.0
    out[1:] = cur - phi * prev
    return out


def _lagged_r(a: FloatArray, b: FloatArray, lag: int) -> tuple[float, int, FloatArray, FloatArray]:
    """r of a[t] with b[t + lag] over pairs where both are finite."""
    w = a.size
    if lag >= 0:
        aa, bb = a[: w - lag], b[lag:]
    else:
        aa, bb = a[-lag:], b[: w + lag]
    ok = np.isfinite(aa) & np.isfinite(bb)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), n, aa[ok], bb[ok]
    return corr(aa[ok], bb[ok]), n, aa[ok], bb[ok]


def _circular_max_r(a: FloatArray, b: FloatArray, max_lag: int) -> FloatArray:
    """Max-over-lags |r| of ``a`` against every circular shift of ``b`` (shifts far from 0)."""
    w = a.size
    fa = np.isfinite(a)
    fb = np.isfinite(b)
    a0 = np.where(fa, a, 0.0)
    b0 = np.where(fb, b, 0.0)
    idx = (np.arange(w)[None, :] + np.arange(w)[:, None]) % w  # row m: b rolled by -m
    bm = b0[idx]
    mm = fb[idx] & fa[None, :]
    n = mm.sum(axis=1).astype(np.float64)
    with np.errstate(all="ignore"):
        sa = (a0[None, :] * mm).sum(axis=1)
        sb = (bm * mm).sum(axis=1)
        saa = (a0[None, :] ** 2 * mm).sum(axis=1)
        sbb = (bm**2 * mm).sum(axis=1)
        sab = (a0[None, :] * bm * mm).sum(axis=1)
        cov = sab - sa * sb / n
        var = (saa - sa**2 / n) * (sbb - sb**2 / n)
        r = np.where((n >= 3) & (var > 0), cov / np.sqrt(np.maximum(var, 1e-300)), np.nan)
    shifts = np.arange(2 * max_lag + 1, w - 2 * max_lag)
    if shifts.size == 0:
        return np.zeros(0)
    lags = np.arange(-max_lag, max_lag + 1)
    mat = np.abs(r[(shifts[:, None] + lags[None, :]) % w])
    with np.errstate(all="ignore"):
        return np.asarray(np.nanmax(np.where(np.isfinite(mat), mat, -1.0), axis=1))


def windowed_sync(
    a: FloatArray, b: FloatArray, t: FloatArray, hop_s: float, *, max_lag: int, min_windows: int
) -> WindowedSync:
    both = np.isfinite(a) & np.isfinite(b)
    n = int(both.sum())
    if n < min_windows:
        return WindowedSync(
            None, None, None, None, n, None, None,
            f"{n} windows with both speakers (fewer than {min_windows})",
        )  # fmt: skip
    if is_constant(a) or is_constant(b):
        return WindowedSync(None, None, None, None, n, None, None, "constant series")
    ea = _prewhiten(a, t)
    eb = _prewhiten(b, t)
    best: tuple[float, int, int, FloatArray, FloatArray] | None = None
    for lag in range(-max_lag, max_lag + 1):
        r, m, ua, ub = _lagged_r(ea, eb, lag)
        if m >= min_windows - 1 and math.isfinite(r) and (best is None or abs(r) > abs(best[0])):
            best = (r, lag, m, ua, ub)
    if best is None:
        return WindowedSync(None, None, None, None, n, None, None, "constant series")
    r, lag, m, ua, ub = best
    n_eff = bartlett_n_eff(ua, ub)
    p_lag = corr_t_p(r, n_eff - 2.0)
    n_lags = 2 * max_lag + 1
    p = float(-np.expm1(n_lags * np.log1p(-min(p_lag, 1.0 - 1e-16))))
    chance = _circular_max_r(ea, eb, max_lag)
    chance = chance[np.isfinite(chance) & (chance >= 0)]
    chance_r = float(chance.mean()) if chance.size else None
    p_shift = float((1 + np.sum(chance >= abs(r))) / (chance.size + 1)) if chance.size else None
    return WindowedSync(r, lag * hop_s, p, None, n, chance_r, p_shift, None)
