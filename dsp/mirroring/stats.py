"""Statistics primitives of the mirroring tests (pure, NaN-safe): z-scores,
autocorrelation and Bartlett's effective sample size, t-test p-values of correlations and
their inverse, partial-correlation residuals, and (weighted) Benjamini-Hochberg.

Student's t comes from ``scipy.special``: importing ``scipy.stats`` costs 0.4-1 s of
start-up."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from dsp.errors import ParameterError
from dsp.mirroring.inputs import FloatArray


def zscore(x: FloatArray) -> FloatArray:
    """z-score over the finite values; NaN stays NaN; constant -> zeros."""
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return out
    sd = float(np.std(x[ok]))
    out[ok] = (x[ok] - np.mean(x[ok])) / sd if sd > 0 else 0.0
    return out


def acf(x: FloatArray, max_lag: int) -> FloatArray:
    """Sample autocorrelation at lags 1..max_lag of a centred, gap-free series."""
    x = x - x.mean()
    den = float(np.dot(x, x))
    if den <= 0 or max_lag < 1:
        return np.zeros(max(max_lag, 0))
    return np.array([np.dot(x[:-k], x[k:]) / den for k in range(1, max_lag + 1)])


def bartlett_n_eff(u: FloatArray, v: FloatArray) -> float:
    """Effective sample size for the correlation of two autocorrelated series.

    ``n / (1 + 2 sum_k rho_u(k) rho_v(k))`` over lags ``1..min(10, n // 5)``, clipped to
    ``[3, n]`` (Bartlett 1935; Pyper & Peterman 1998).
    """
    n = u.size
    max_lag = max(1, min(10, n // 5))
    s = 1.0 + 2.0 * float(np.dot(acf(u, max_lag), acf(v, max_lag)))
    return float(np.clip(n / max(s, 1e-9), 3.0, n))


def t_sf(t: float, df: float) -> float:
    """Upper tail ``P(T > t)`` of Student's t with ``df`` degrees of freedom (scipy.special:
    importing scipy.stats costs 0.4-1 s of start-up)."""
    return float(special.stdtr(df, -t))


def corr_t_p(r: float, df: float) -> float:
    """Two-sided p of a correlation ``r`` with ``df`` residual degrees of freedom."""
    df = max(df, 1.0)
    r = float(np.clip(r, -0.999999, 0.999999))
    t = r * math.sqrt(df / (1.0 - r * r))
    return float(2.0 * t_sf(abs(t), df))


def corr(a: FloatArray, b: FloatArray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def residualize(y: FloatArray, covariates: FloatArray) -> FloatArray:
    """Residuals of ``y`` regressed on ``[1, covariates]`` ((n, q) array)."""
    x = np.column_stack([np.ones(y.size), covariates])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return np.asarray(y - x @ beta, dtype=np.float64)


def signed_z(r: float | None, p: float | None) -> float | None:
    if r is None or p is None:
        return None
    return float(math.copysign(-float(special.ndtri(max(p, 1e-300) / 2.0)), r))


def is_constant(x: FloatArray) -> bool:
    """True when the finite values of ``x`` do not vary (up to rounding)."""
    f = x[np.isfinite(x)]
    return f.size == 0 or float(np.ptp(f)) <= 1e-9 * max(1.0, float(np.max(np.abs(f))))


def benjamini_hochberg(p: FloatArray, *, weights: FloatArray | None = None) -> FloatArray:
    """(Weighted) Benjamini-Hochberg adjusted p-values (NaN entries stay NaN, left out).

    With ``weights`` (positive, rescaled here to mean 1 over the finite p-values), each
    ``p / w`` enters the BH step-up (Genovese, Roeder & Wasserman 2006), which keeps the
    false discovery rate at the level used while spending more of it on heavier tests.

    Parameters
    ----------
    p : (m,) float
        Raw p-values.
    weights : (m,) float, optional
        Relative prior weights; all 1 by default (plain BH).

    Returns
    -------
    (m,) float
        Adjusted p-values, monotone in the raw ones, capped at 1.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    q = p.copy()
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != p.shape or np.any(w[ok] <= 0):
            raise ParameterError("weights must be positive and shaped like p")
        q[ok] = p[ok] / (w[ok] / w[ok].mean())
    order = ok[np.argsort(q[ok])]
    ranked = q[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out[order] = np.minimum(ranked, 1.0)
    return out


def bh_rank_one_threshold(weights: FloatArray, alpha: float) -> FloatArray:
    """Per test, the raw p below which :func:`benjamini_hochberg` with these ``weights``
    gives ``p_adj < alpha`` whatever the other p-values are: ``alpha * w / mean(w) / m``,
    the step at rank one, the strictest (``m`` tests)."""
    w = np.asarray(weights, dtype=np.float64)
    return alpha * w / w.mean() / w.size if w.size else w.copy()


def r_for_p(p: float, df: float) -> float:
    """The ``|r|`` whose two-sided t-test p-value with ``df`` degrees of freedom is ``p``
    (the inverse of :func:`corr_t_p`)."""
    t = -float(special.stdtrit(df, p / 2.0))  # the lower tail keeps tiny p's digits
    return t / math.sqrt(df + t * t)
