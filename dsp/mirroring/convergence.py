"""Convergence: the trend of the speakers' distance over the call (linear trend with
AR(1) errors whose coefficient is floored by each speaker's IPU-level persistence,
Whittle fit), half/half distances, and the comparison with sham pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from dsp.mirroring.inputs import FloatArray, ShamCall, WindowSeries, canonical
from dsp.mirroring.results import Convergence, Movement, clean
from dsp.mirroring.stats import acf, corr, t_sf


def _block_corr(phi: float, k: float, share: float = 1.0) -> float:
    """Correlation of adjacent means of ``k`` consecutive values of an AR(1) with ``phi``
    plus white measurement noise, the AR(1) part carrying ``share`` of the variance (the
    noise averages out within a window mean and lowers the correlation of adjacent ones)."""
    kk = max(1, int(round(k)))
    i = np.arange(kk)
    lag = i[None, :] - i[:, None]
    within = share * float(np.sum(phi ** np.abs(lag))) + (1.0 - share) * kk
    across = share * float(np.sum(phi ** np.abs(lag + kk)))
    return across / within if within > 0 else 0.0


#: Grids of the AR(1) coefficient and of the AR(1) share of the variance searched by
#: :func:`_whittle_ar1_noise` (finer near 1, where window-level persistence changes fast).
_WHITTLE_PHI = np.concatenate([np.linspace(0.0, 0.9, 46), np.linspace(0.905, 0.995, 19)])
_WHITTLE_SIGNAL_SHARE = np.linspace(0.05, 1.0, 20)


def _whittle_ar1_noise(v: FloatArray) -> tuple[float, float]:
    """AR(1) coefficient of an AR(1)-plus-white-noise series and the AR(1) part's share of
    the variance, by Whittle's likelihood.

    The periodogram is fitted with the model's spectrum ``share * (1 - phi^2) /
    |1 - phi e^{-iw}|^2 + (1 - share)`` (scale profiled out) over the grids above. Uses
    every lag at once, so the few values of a short call do not read moderate persistence
    as slow wandering (which would bury a real trend).
    """
    n = v.size
    periodogram = np.abs(np.fft.rfft(v - v.mean())[1 : (n + 1) // 2]) ** 2 / n
    cos_w = np.cos(2.0 * np.pi * np.arange(1, periodogram.size + 1) / n)
    phi = _WHITTLE_PHI[:, None, None]
    share = _WHITTLE_SIGNAL_SHARE[None, :, None]
    spectrum = share * (1.0 - phi**2) / (1.0 - 2.0 * phi * cos_w + phi**2) + (1.0 - share)
    scale = np.mean(periodogram / spectrum, axis=-1)
    log_lik = -periodogram.size * np.log(scale) - np.sum(np.log(spectrum), axis=-1)
    best, best_share = np.unravel_index(int(np.argmax(log_lik)), log_lik.shape)
    return float(_WHITTLE_PHI[best]), float(_WHITTLE_SIGNAL_SHARE[best_share])


def _ipu_persistence(start_s: FloatArray, values: FloatArray) -> tuple[float, float, float] | None:
    """IPU-level AR(1) coefficient of a speaker's values, robust to measurement noise.

    The series (finite values in time order, linearly detrended) is read as AR(1) plus
    white measurement noise (:func:`_whittle_ar1_noise`); ``phi`` is bias-corrected for
    the fitted line, ``(2 + 4 phi) / n`` (the first-order bias of an AR(1) estimate after
    removing a linear trend; ``(1 + 3 phi) / n`` is the mean-only one). Returns ``(phi,
    share, rate)``: the AR(1) part's share of the variance and the speaker's finite values
    per second; None with too few values.
    """
    ok = np.isfinite(values) & np.isfinite(start_s)
    if ok.sum() < 20:
        return None
    order = np.argsort(start_s[ok])
    v = values[ok][order]
    t = start_s[ok][order]
    idx = np.arange(v.size, dtype=np.float64)
    scale = float(np.max(np.abs(v)))
    v = v - np.polyval(np.polyfit(idx, v, 1), idx)
    # Values constant around their trend (synthetic speech, a rate that never changes) do
    # not wander at all; their rounding residue must not be fitted as persistence.
    flat = float(np.std(v)) <= 1e-9 * max(scale, 1e-12)
    phi, share = (0.0, 1.0) if flat else _whittle_ar1_noise(v)
    phi = min(phi + (2.0 + 4.0 * phi) / v.size, 0.995)
    span = float(t[-1] - t[0])
    return phi, share, (v.size / span if span > 0 else 0.0)


def _trend_rho(y: FloatArray, tc: FloatArray, rho_floor: float | None) -> float:
    """The AR(1) coefficient of a trend fit: the lag-1 autocorrelation of the OLS residuals
    raised to ``rho_floor`` (the persistence implied by the speakers' IPU-level series,
    which a short window series underestimates) or, without a floor, bias-corrected
    (``rho + (1 + 3 rho) / n``, Marriott & Pope 1954); clipped to ``[0, 0.98]``. With a
    floor the correction is not added on top: the floor already carries the persistence
    the few windows under-read."""
    n = y.size
    x = np.column_stack([np.ones(n), tc])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    rho = max(float(acf(y - x @ beta, 1)[0]), 0.0)
    rho = rho + (1.0 + 3.0 * rho) / n if rho_floor is None else max(rho, rho_floor)
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


def _interval(value: float, se: float, q: float) -> tuple[float, float]:
    return (value - q * se, value + q * se)


def _folded(value: float, se: float, q: float) -> tuple[float, tuple[float, float]]:
    """``|value|`` and its interval, from the interval of ``value``."""
    lo, hi = _interval(value, se, q)
    if lo <= 0.0 <= hi:
        return abs(value), (0.0, max(-lo, hi))
    return abs(value), (min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))


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
    start, start_ci = _folded(float(d[0]), float(d_se[0]), q)
    end, end_ci = _folded(float(d[1]), float(d_se[1]), q)
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
        agent_moved_ci=_interval(am, am_se, q),
        customer_moved=cm,
        customer_moved_ci=_interval(cm, cm_se, q),
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
    series: Sequence[tuple[FloatArray, FloatArray | None]],
    rows: Sequence[FloatArray],
    step_s: float,
) -> float | None:
    """Lag-1 autocorrelation of ``a - c`` between windows ``step_s`` apart implied by the
    speakers' IPU-level persistence (``series``: each speaker's :func:`unit_series`;
    ``rows``: their window rows): the larger of the two speakers', so a steadier partner
    does not dilute one speaker's slow wandering into a trend. None when neither speaker
    has enough values to estimate it."""
    top = None
    for (times, vals), row in zip(series, rows, strict=True):
        if vals is None:
            continue
        est = _ipu_persistence(times, vals)
        finite = row[np.isfinite(row)]
        if est is None or finite.size < 2:
            continue
        phi, share, rate = est
        implied = _block_corr(phi, rate * step_s, share)
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
) -> Convergence:
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
        movement=movement(a, b, t_min, stride, rho_floor),
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
    own: Sequence[tuple[FloatArray, FloatArray | None]],
    shams: Sequence[ShamCall],
    name: str,
    *,
    min_windows: int,
) -> Convergence:
    """:func:`convergence` of one feature's window rows ``a`` (agent) and ``b`` (customer)
    on the call's clock: non-overlapping windows (stride ``window_s / hop_s``), the AR(1)
    floor from the speakers' own IPU series ``own`` (:func:`window_rho`), sham pairs from
    ``shams``."""
    hop = float(windows.hop_s)
    stride = max(1, int(round(float(windows.window_s) / hop))) if hop > 0 else 1
    return convergence(
        a,
        b,
        centres_s,
        min_windows=min_windows,
        sham_pairs=sham_pairs(shams, name, a.size),
        stride=stride,
        rho_floor=window_rho(own, (a, b), float(windows.window_s) * stride),
    )
