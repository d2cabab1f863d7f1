"""Convergence: the trend of the speakers' distance over the call, from each speaker's own
line through their IPU (or turn) values with AR(1)-plus-noise errors (windows when the
lines cross or a speaker has too few values), where they stood and who moved, and the
comparison with sham pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from dsp.mirroring.inputs import FloatArray, ShamCall, WindowSeries, canonical
from dsp.mirroring.lines import (
    SpeakerLine,
    folded,
    interval,
    line_convergence,
    line_movement,
)
from dsp.mirroring.persistence import block_corr
from dsp.mirroring.results import Convergence, Movement, clean
from dsp.mirroring.stats import acf, corr, t_sf


def _trend_rho(y: FloatArray, tc: FloatArray, rho_floor: float | None) -> float:
    """The AR(1) coefficient of a trend fit: the lag-1 autocorrelation of the OLS residuals,
    bias-corrected (``rho + (1 + 3 rho) / n``, Marriott & Pope 1954), raised to
    ``rho_floor`` (the persistence implied by the speakers' IPU-level series, which a short
    window series underestimates); clipped to ``[0, 0.98]``."""
    n = y.size
    x = np.column_stack([np.ones(n), tc])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    rho = max(float(acf(y - x @ beta, 1)[0]), 0.0)
    rho = rho + (1.0 + 3.0 * rho) / n
    if rho_floor is not None:
        rho = max(rho, rho_floor)
    return float(np.clip(rho, 0.0, 0.98))


def _gls_fit(y: FloatArray, tc: FloatArray, rho: float) -> tuple[FloatArray, FloatArray, float]:
    """Line ``y = b0 + b1 tc`` with AR(1) errors of coefficient ``rho`` (Prais-Winsten):
    ``(b, cov(b), df)``, ``cov`` all zero when the fit is degenerate. ``df = n - 3``: the
    line's two coefficients and one for ``rho``, estimated from the same data."""
    n = y.size
    x = np.column_stack([np.ones(n), tc])
    w = math.sqrt(1.0 - rho * rho)
    ys = np.concatenate([[w * y[0]], y[1:] - rho * y[:-1]])
    xs = np.vstack([w * x[:1], x[1:] - rho * x[:-1]])
    b, *_ = np.linalg.lstsq(xs, ys, rcond=None)
    e = ys - xs @ b
    df = max(n - 3.0, 1.0)  # the line's two coefficients and the AR(1) coefficient
    s2 = float(np.dot(e, e)) / df
    xtx = xs.T @ xs
    if float(np.linalg.det(xtx)) <= 0 or s2 <= 0:
        return np.asarray(b, dtype=np.float64), np.zeros((2, 2)), df
    return (
        np.asarray(b, dtype=np.float64),
        np.asarray(s2 * np.linalg.inv(xtx), dtype=np.float64),
        df,
    )


def _gls_trend(
    y: FloatArray, tc: FloatArray, rho_floor: float | None = None
) -> tuple[float, float, float, float]:
    """Linear trend of ``y`` on centred time ``tc`` with AR(1) errors (:func:`_trend_rho`,
    :func:`_gls_fit`).

    Returns
    -------
    level, slope, t, df : float
        Fitted value at the mean time, slope per unit of ``tc``, the slope's t statistic
        and its degrees of freedom.
    """
    b, cov, df = _gls_fit(y, tc, _trend_rho(y, tc, rho_floor))
    se = math.sqrt(float(cov[1, 1]))
    return float(b[0]), float(b[1]), (float(b[1]) / se if se > 0 else 0.0), df


def movement(
    a: FloatArray, b: FloatArray, t_min: FloatArray, stride: int, rho_floor: float | None
) -> Movement | None:
    """Where the two speakers stood at the start and the end of the call and who moved,
    from lines with AR(1) errors fitted to the same non-overlapping windows as the test
    (the distance's AR(1) coefficient for all three lines), with 95 % intervals."""
    a, b, t_min = a[::stride], b[::stride], t_min[::stride]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 5:
        return None
    tc = t_min[ok] - t_min[ok].mean()
    diff = a[ok] - b[ok]
    if np.ptp(tc) <= 0 or np.ptp(diff) <= 0:
        return None
    rho = _trend_rho(diff, tc, rho_floor)
    ends = np.array([[1.0, tc[0]], [1.0, tc[-1]]])
    bd, cd, df = _gls_fit(diff, tc, rho)
    q = float(special.stdtrit(df, 0.975))
    d_se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", ends, cd, ends), 0.0))
    d = ends @ bd
    start, start_ci = folded(float(d[0]), float(d_se[0]), q)
    end, end_ci = folded(float(d[1]), float(d_se[1]), q)
    span = float(tc[-1] - tc[0])
    moved = []
    for own, toward in ((a[ok], -np.sign(d[0])), (b[ok], np.sign(d[0]))):
        bo, co, _ = _gls_fit(own, tc, rho)
        sign = float(toward) or 1.0
        moved.append((sign * float(bo[1]) * span, math.sqrt(max(float(co[1, 1]), 0.0)) * span))
    (am, am_se), (cm, cm_se) = moved
    return Movement(
        distance_start=start,
        distance_start_ci=start_ci,
        distance_end=end,
        distance_end_ci=end_ci,
        agent_moved=am,
        agent_moved_ci=interval(am, am_se, q),
        customer_moved=cm,
        customer_moved_ci=interval(cm, cm_se, q),
    )


def _convergence_t(
    diff: FloatArray, tc: FloatArray, rho_floor: float | None = None
) -> tuple[float, float, float]:
    """(rate per unit time, positive = closer; t statistic, sign = closer; df)."""
    level, slope, t, df = _gls_trend(diff, tc, rho_floor)
    f0, f1 = level + slope * tc[0], level + slope * tc[-1]
    if f0 * f1 > 0:
        sign = 1.0 if level > 0 else -1.0
        return (abs(f0) - abs(f1)) / float(tc[-1] - tc[0]), -sign * t, df
    _, d_slope, d_t, df = _gls_trend(np.abs(diff), tc, rho_floor)
    return -d_slope, -d_t, df


def _convergence_stat(
    a: FloatArray,
    b: FloatArray,
    t_min: FloatArray,
    stride: int = 1,
    rho_floor: float | None = None,
) -> tuple[float, float, float] | None:
    """Convergence rate (per minute, positive = closer), its p, and r of -|a-b| with time.

    The signed difference ``a - b`` is fitted with a linear trend with AR(1) errors; when
    the fitted line does not cross zero inside the call, the rate is the change of the
    fitted distance and the statistic that of the slope (no folding noise from
    ``|a - b|``); when it crosses (one speaker overtakes the other) the trend of ``|a - b|``
    itself is tested instead. Only every ``stride``-th window is used (``window_s /
    hop_s``: windows that do not overlap, which still cover all the speech), so the AR(1)
    model is not asked to describe the overlap.
    """
    a, b, t_min = a[::stride], b[::stride], t_min[::stride]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 5:
        return None
    tt = t_min[ok]
    tc = tt - tt.mean()
    diff = a[ok] - b[ok]
    if np.ptp(tc) <= 0 or np.ptp(diff) <= 0:
        return None
    value, t, df = _convergence_t(diff, tc, rho_floor)
    p = float(2.0 * t_sf(abs(t), df))
    return value, p, -corr(tc, np.abs(diff))


#: Sham pairs per sham call (agent of call k with customers of calls k+1..k+this).
_MAX_SHAM_OFFSETS = 4


def window_rho(
    lines: Sequence[SpeakerLine | None], rows: Sequence[FloatArray], step_s: float
) -> float | None:
    """Lag-1 autocorrelation of ``a - c`` between windows ``step_s`` apart implied by the
    persistence each speaker's line was given (``rows``: their window rows): the larger of
    the two speakers', so a steadier partner does not dilute one speaker's slow wandering
    into a trend. None when neither speaker has a line."""
    top = None
    for line, row in zip(lines, rows, strict=True):
        if line is None or np.isfinite(row).sum() < 2:
            continue
        span_s = float(line.start_s[-1] - line.start_s[0])
        rate = line.values.size / span_s if span_s > 0 else 0.0
        implied = block_corr(line.phi, rate * step_s, line.share)
        top = implied if top is None else max(top, implied)
    return top


def _align(row: FloatArray, w: int) -> FloatArray:
    """A sham's window row resampled by relative time onto ``w`` windows (nearest)."""
    if row.size == 0:
        return np.full(w, np.nan)
    pos = np.rint(np.linspace(0.0, row.size - 1.0, w)).astype(np.int64)
    return np.asarray(row[pos], dtype=np.float64)


def convergence(
    a: FloatArray,
    b: FloatArray,
    t_s: FloatArray,
    *,
    min_windows: int,
    sham_pairs: Sequence[tuple[FloatArray, FloatArray]],
    stride: int = 1,
    rho_floor: float | None = None,
    lines: tuple[SpeakerLine | None, SpeakerLine | None] = (None, None),
) -> Convergence:
    """Convergence of window rows ``a`` (agent) and ``b`` (customer): the trend test and
    the movement from the speakers' own ``lines`` when both exist and do not cross inside
    the call, else from the windows (:func:`_convergence_stat`, :func:`movement`);
    ``r_time`` always from the windows; ``p`` raised to the sham pairs' when there are
    enough of them."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())

    def none(reason: str) -> Convergence:
        return Convergence(None, None, None, None, None, n, None, None, reason)

    if n < min_windows:
        return none(f"{n} windows with both speakers (fewer than {min_windows})")
    t_min = t_s / 60.0
    stat = _convergence_stat(a, b, t_min, stride, rho_floor)
    if stat is None:
        return none("constant distance")
    value, p, r_time = stat
    la, lc = lines
    moved: Movement | None
    by_lines = None if la is None or lc is None else line_convergence(la, lc)
    if by_lines is not None and la is not None and lc is not None:
        value, p = by_lines
        moved = line_movement(la, lc)
    else:
        moved = movement(a, b, t_min, stride, rho_floor)
    sham_z = None
    sham_vals = []
    for sa, sb in sham_pairs:
        st = _convergence_stat(sa, sb, t_min, stride)
        if st is not None and math.isfinite(st[0]):
            sham_vals.append(st[0])
    if len(sham_vals) >= 3:
        sv = np.asarray(sham_vals)
        sd = float(sv.std(ddof=1))
        if sd > 0:
            sham_z = (value - float(sv.mean())) / sd
            m = sv.size
            p_sham = float(2.0 * t_sf(abs(sham_z) / math.sqrt(1.0 + 1.0 / m), m - 1))
            p = max(p, p_sham)
    return Convergence(
        value=value,
        r_time=r_time,
        p=p,
        p_adj=None,
        direction=None,
        n=n,
        movement=moved,
        sham_z=clean(sham_z),
        reason=None,
    )


def sham_pairs(shams: Sequence[ShamCall], name: str, w: int) -> list[tuple[FloatArray, FloatArray]]:
    """Sham pairs of feature ``name``: an agent and a customer from two *other* calls
    (Borrie et al. 2019), each sham window row aligned by relative time onto ``w`` windows:
    how much unrelated speakers converge by chance (drift, wandering), without this call's
    own movements in the baseline. The agent of sham call ``k`` is paired with the
    customers of the next :data:`_MAX_SHAM_OFFSETS` sham calls (cyclically)."""
    rows_a: list[FloatArray] = []
    rows_c: list[FloatArray] = []
    for sham in shams:
        sv = canonical(sham.windows.values)
        if name in sv:
            srow = np.asarray(sv[name], dtype=np.float64)
            rows_a.append(_align(srow[0], w))
            rows_c.append(_align(srow[1], w))
    m = len(rows_a)
    pairs: list[tuple[FloatArray, FloatArray]] = []
    for k in range(m):
        for j in range(1, min(m, _MAX_SHAM_OFFSETS + 1)):
            pairs.append((rows_a[k], rows_c[(k + j) % m]))
    return pairs


def feature_convergence(
    a: FloatArray,
    b: FloatArray,
    centres_s: FloatArray,
    windows: WindowSeries,
    lines: tuple[SpeakerLine | None, SpeakerLine | None],
    shams: Sequence[ShamCall],
    name: str,
    *,
    min_windows: int,
) -> Convergence:
    """:func:`convergence` of one feature: the speakers' ``lines`` through their own IPU (or
    turn) values (:func:`~dsp.mirroring.lines.speaker_lines`); the window rows ``a``
    (agent) and ``b`` (customer) on the call's clock, non-overlapping (stride ``window_s /
    hop_s``), with the AR(1) floor from the lines' persistence (:func:`window_rho`); sham
    pairs from ``shams``."""
    hop = float(windows.hop_s)
    stride = max(1, int(round(float(windows.window_s) / hop))) if hop > 0 else 1
    return convergence(
        a,
        b,
        centres_s,
        min_windows=min_windows,
        sham_pairs=sham_pairs(shams, name, a.size),
        stride=stride,
        rho_floor=window_rho(lines, (a, b), float(windows.window_s) * stride),
        lines=lines,
    )
