"""dsp.mirroring's statistics against reference implementations, on seeded random data:
pingouin (partial correlation), statsmodels (OLS coefficient t-test, Benjamini-Hochberg,
GLS with an AR(1) covariance, acf) and scipy.stats (Student t).

Each test also checks that its tolerance would catch a plausible mistake (a df off by one,
the first Prais-Winsten row dropped, a lag too many, ...): the reference must tell the
right answer from a near miss, not only agree with it.

Convergence's primitives are both here: each speaker's GLS line with AR(1)-plus-noise
errors (``dsp.mirroring.lines.speaker_line``) and the window-level Prais-Winsten trend it
falls back on (``dsp.mirroring.convergence._gls_trend``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.linalg import toeplitz
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.stattools import acf as sm_acf

from dsp.mirroring import benjamini_hochberg
from dsp.mirroring.convergence import _gls_trend
from dsp.mirroring.exchanges import Turns, exchanges, history_mean
from dsp.mirroring.lines import speaker_line, speaker_lines
from dsp.mirroring.stats import (
    bartlett_n_eff,
    corr,
    corr_t_p,
    r_for_p,
    residualize,
    t_sf,
)
from dsp.mirroring.synchrony import SYNC_HISTORY_SPAN, directional_sync

TOL = 1e-10


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.standard_normal() / math.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.standard_normal()
    return x


# -- partial correlation ----------------------------------------------------------------


def _partial_r_p(x: np.ndarray, y: np.ndarray, cov: np.ndarray) -> tuple[float, float, int]:
    """Mirrorline's partial correlation and p (the directional test's computation)."""
    r = corr(residualize(y, cov), residualize(x, cov))
    df = x.size - 2 - cov.shape[1]
    return r, corr_t_p(r, df), df


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("q", [1, 2])
def test_partial_correlation_matches_pingouin_and_ols_t(seed: int, q: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(14, 60))
    cov = rng.standard_normal((n, q)) * rng.uniform(0.5, 3.0, q)
    x = cov @ rng.standard_normal(q) + rng.standard_normal(n)
    y = 0.4 * x + cov @ rng.standard_normal(q) + rng.standard_normal(n) * 2
    r, p, df = _partial_r_p(x, y, cov)

    data = pd.DataFrame({"x": x, "y": y, **{f"z{j}": cov[:, j] for j in range(q)}})
    ref = pg.partial_corr(data, x="x", y="y", covar=[f"z{j}" for j in range(q)])
    assert int(ref["n"].iloc[0]) == n
    assert r == pytest.approx(float(ref["r"].iloc[0]), abs=TOL)
    assert p == pytest.approx(float(ref["p_val"].iloc[0]), rel=1e-8, abs=TOL)

    # The t-test of a partial correlation is the OLS t-test of x's coefficient in
    # y ~ 1 + x + covariates, with the same df.
    fit = sm.OLS(y, sm.add_constant(np.column_stack([x, cov]))).fit()
    assert fit.df_resid == df
    t = float(fit.tvalues[1])
    assert r == pytest.approx(t / math.sqrt(t * t + df), abs=TOL)
    assert p == pytest.approx(float(fit.pvalues[1]), rel=1e-8, abs=TOL)

    # a df off by one (a covariate not counted) is told apart
    assert abs(corr_t_p(r, df + 1) - float(fit.pvalues[1])) > 1e3 * TOL


def _turns(rng: np.random.Generator, n_turns: int) -> Turns:
    """Random alternating-ish turns of two speakers with initial/final/mean values and a few
    missing values."""
    speaker = np.zeros(n_turns, dtype=np.int64)
    s = 0
    for i in range(n_turns):
        speaker[i] = s
        if rng.uniform() < 0.85:  # sometimes a speaker keeps the floor
            s = 1 - s
    start = np.cumsum(rng.uniform(1.0, 6.0, n_turns))
    mean = np.where(speaker == 0, 2.0, -1.0) + np.cumsum(rng.standard_normal(n_turns)) * 0.3
    initial = mean + rng.standard_normal(n_turns) * 0.5
    final = mean + rng.standard_normal(n_turns) * 0.5
    for arr in (initial, final, mean):
        arr[rng.uniform(size=n_turns) < 0.05] = np.nan
    return Turns(speaker, start, {"f": initial}, {"f": final}, {"f": mean})


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("follower", [0, 1])
def test_directional_sync_matches_pingouin_on_its_exchanges(seed: int, follower: int) -> None:
    """directional_sync's r and p against pingouin on the exchanges built here, from the
    documented definition (follower's turn-initial y, leader's preceding turn-final x,
    covariates: follower's previous turn-final and mean of its last 4 turn means)."""
    rng = np.random.default_rng(100 + seed)
    turns = _turns(rng, int(rng.integers(50, 120)))
    ex = exchanges(turns, follower=follower)
    hist = history_mean(turns, "f", SYNC_HISTORY_SPAN)
    got = directional_sync(turns, ex, "f", hist, min_exchanges=6)
    assert got.r is not None and got.p is not None

    rows = []
    for fol, lead, prev in zip(ex.follower_turn, ex.leader_turn, ex.prev_turn, strict=True):
        if prev < 0:
            continue
        y, x, z1 = turns.initial["f"][fol], turns.final["f"][lead], turns.final["f"][prev]
        if np.isfinite([y, x, z1]).all():
            rows.append((x, y, z1, hist[prev]))
    data = pd.DataFrame(rows, columns=["x", "y", "z1", "z2"])
    data["z2"] = data["z2"].fillna(data["z2"].mean())
    ref = pg.partial_corr(data, x="x", y="y", covar=["z1", "z2"])
    assert got.n == len(data) == int(ref["n"].iloc[0])
    assert got.df == got.n - 4
    assert got.r == pytest.approx(float(ref["r"].iloc[0]), abs=TOL)
    assert got.p == pytest.approx(float(ref["p_val"].iloc[0]), rel=1e-8, abs=TOL)


# -- Benjamini-Hochberg -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_benjamini_hochberg_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(3, 40))
    p = np.concatenate([rng.uniform(0, 0.01, m // 3), rng.uniform(0, 1, m - m // 3)])
    p = rng.permutation(p)
    p[rng.uniform(size=m) < 0.15] = np.nan  # untested: left out, stays NaN
    ok = np.isfinite(p)

    got = benjamini_hochberg(p)
    assert np.isnan(got[~ok]).all()
    ref = multipletests(p[ok], method="fdr_bh")[1]
    np.testing.assert_allclose(got[ok], ref, rtol=0, atol=TOL)

    # weighted: BH on p / w, w rescaled to mean 1 over the tested p-values
    w = rng.choice([0.25, 0.5, 1.5, 0.0625 * 6], size=m)
    got_w = benjamini_hochberg(p, weights=w)
    ww = w[ok] / w[ok].mean()
    ref_w = multipletests(p[ok] / ww, method="fdr_bh")[1]
    np.testing.assert_allclose(got_w[ok], np.minimum(ref_w, 1.0), rtol=0, atol=TOL)
    # weights not rescaled (or rescaled over all m, NaN included) would differ
    if not np.allclose(w[ok].mean(), 1.0):
        wrong = multipletests(np.minimum(p[ok] / w[ok], 1.0), method="fdr_bh")[1]
        assert np.max(np.abs(wrong - got_w[ok])) > 1e3 * TOL


# -- Prais-Winsten GLS trend ------------------------------------------------------------


def _gls_reference(y: np.ndarray, tc: np.ndarray, rho: float) -> tuple[float, float, float]:
    """Intercept, slope and the slope's t of GLS with the AR(1) covariance rho^|i-j|."""
    n = y.size
    fit = sm.GLS(y, sm.add_constant(tc), sigma=toeplitz(rho ** np.arange(n))).fit()
    return float(fit.params[0]), float(fit.params[1]), float(fit.tvalues[1])


@pytest.mark.parametrize("seed", range(6))
def test_prais_winsten_trend_with_a_given_ar1_matches_gls(seed: int) -> None:
    """With a floor above the residuals' lag-1 autocorrelation, the AR(1) coefficient is
    the floor: the fit is exact GLS with covariance rho^|i-j| (Prais-Winsten keeps the first
    observation, scaled by sqrt(1 - rho^2)); the t uses df = n - 3 (rho estimated)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(12, 60))
    tc = np.sort(rng.uniform(0, 10, n))
    tc -= tc.mean()
    y = 1.5 - 0.2 * tc + rng.standard_normal(n)  # white errors: low residual acf
    ols = y - np.polyval(np.polyfit(tc, y, 1), tc)
    floor = float(np.clip(sm_acf(ols, nlags=1, fft=False)[1], 0, None) + rng.uniform(0.2, 0.6))
    level, slope, t, df = _gls_trend(y, tc, rho_floor=floor)
    ref_level, ref_slope, ref_t = _gls_reference(y, tc, floor)
    assert df == n - 3
    assert level == pytest.approx(ref_level, abs=1e-9)
    assert slope == pytest.approx(ref_slope, abs=1e-9)
    # statsmodels' t uses df = n - 2: the same residual sum of squares over n - 3
    assert t == pytest.approx(ref_t * math.sqrt((n - 3) / (n - 2)), rel=1e-9)

    # the Cochrane-Orcutt variant (first observation dropped) is told apart
    co = sm.OLS(y[1:] - floor * y[:-1], sm.add_constant(tc[1:] - floor * tc[:-1])).fit()
    assert abs(float(co.params[1]) - slope) > 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_prais_winsten_trend_without_floor_uses_bias_corrected_residual_acf(seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    n = int(rng.integers(15, 60))
    tc = np.linspace(-5, 5, n)
    y = 0.1 * tc + _ar1(rng, n, 0.5)
    ols = y - np.polyval(np.polyfit(tc, y, 1), tc)
    rho = max(float(sm_acf(ols, nlags=1, fft=False)[1]), 0.0)
    rho = float(np.clip(rho + (1 + 3 * rho) / n, 0.0, 0.98))  # Marriott & Pope
    level, slope, t, _ = _gls_trend(y, tc)
    ref_level, ref_slope, ref_t = _gls_reference(y, tc, rho)
    assert level == pytest.approx(ref_level, abs=1e-9)
    assert slope == pytest.approx(ref_slope, abs=1e-9)
    assert t == pytest.approx(ref_t * math.sqrt((n - 3) / (n - 2)), rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_speaker_line_matches_gls_with_the_fitted_ar1_plus_noise_covariance(seed: int) -> None:
    """A speaker's line is GLS with covariance ``share phi^|i-j| + (1 - share) I`` of the
    speaker's fitted persistence: coefficients, their standard errors (residual variance
    over n - 2) against statsmodels."""
    rng = np.random.default_rng(90 + seed)
    n = int(rng.integers(40, 160))
    start_s = np.sort(rng.uniform(0.0, 600.0, n))
    noise = np.empty(n)
    noise[0] = rng.standard_normal()
    for i in range(1, n):
        noise[i] = 0.8 * noise[i - 1] + 0.6 * rng.standard_normal()
    y = 4.0 + 0.05 * start_s / 60.0 + noise + 0.5 * rng.standard_normal(n)
    line, _ = speaker_lines([(start_s, y), (start_s, rng.standard_normal(n))])
    assert line is not None
    phi, share = line.phi, line.share
    assert phi > 0.0  # the persistence is real here: the covariance is not the identity
    sigma = share * toeplitz(phi ** np.arange(n)) + (1.0 - share) * np.eye(n)
    ref = sm.GLS(y, sm.add_constant(start_s / 60.0), sigma=sigma).fit()
    again = speaker_line(start_s, y, (phi, share))  # the fit given that persistence
    assert again is not None and (again.level, again.slope) == (line.level, line.slope)
    assert line.level == pytest.approx(float(ref.params[0]), rel=1e-9)
    assert line.slope == pytest.approx(float(ref.params[1]), rel=1e-9, abs=1e-12)
    assert np.sqrt(np.diag(line.cov)) == pytest.approx(np.asarray(ref.bse), rel=1e-9)
    # ordinary least squares (the persistence ignored) is told apart
    ols = sm.OLS(y, sm.add_constant(start_s / 60.0)).fit()
    assert abs(float(ols.bse[1]) - math.sqrt(line.cov[1, 1])) > 1e-3 * float(ols.bse[1])


# -- Bartlett effective sample size -----------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_bartlett_n_eff_matches_the_formula_with_statsmodels_acf(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 200))
    phi_u, phi_v = rng.uniform(-0.3, 0.95, 2)
    u, v = _ar1(rng, n, phi_u) + 3.0, _ar1(rng, n, phi_v) - 1.0
    lags = max(1, min(10, n // 5))
    ru = sm_acf(u, nlags=lags, fft=False)[1:]
    rv = sm_acf(v, nlags=lags, fft=False)[1:]
    ref = float(np.clip(n / (1 + 2 * np.dot(ru, rv)), 3.0, n))
    assert bartlett_n_eff(u, v) == pytest.approx(ref, rel=1e-12)
    # one lag more (or fewer) is told apart unless the clip hides it
    more = sm_acf(u, nlags=lags + 1, fft=False)[1:] @ sm_acf(v, nlags=lags + 1, fft=False)[1:]
    off = float(np.clip(n / (1 + 2 * more), 3.0, n))
    if 3.0 < ref < n and 3.0 < off < n:
        assert abs(off - ref) > 1e-9


def test_bartlett_n_eff_clips_to_three_and_n() -> None:
    rng = np.random.default_rng(1)
    n, lags = 40, 8  # acf products summing to ~6.3 put n / (1 + 2 sum) below 3
    alt = np.tile([1.0, -1.0], n // 2) + 1e-3 * rng.standard_normal(n)  # acf ~ (-1)^k
    smooth = np.linspace(0.0, 1.0, n) + 1e-3 * rng.standard_normal(n)  # acf > 0
    for u, v, bound in ((alt, alt, 3.0), (alt, smooth, float(n))):
        s = float(sm_acf(u, nlags=lags, fft=False)[1:] @ sm_acf(v, nlags=lags, fft=False)[1:])
        raw = n / (1 + 2 * s) if 1 + 2 * s > 0 else math.inf
        assert (raw < 3.0) if bound == 3.0 else (raw > n)  # the case reaches the clip
        assert bartlett_n_eff(u, v) == bound


# -- Student t helpers ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_t_helpers_match_scipy_stats(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        df = float(rng.choice([1.0, 2.0, 3.5, 10.0, 47.0, 500.0]) * rng.uniform(1.0, 1.2))
        t = float(rng.uniform(-8, 8))
        assert t_sf(t, df) == pytest.approx(float(stats.t.sf(t, df)), rel=1e-10, abs=1e-300)
        r = float(rng.uniform(-0.98, 0.98))
        p = corr_t_p(r, df)
        ref = 2 * float(stats.t.sf(abs(r) * math.sqrt(df / (1 - r * r)), df))
        assert p == pytest.approx(ref, rel=1e-10, abs=1e-300)
        assert r_for_p(p, df) == pytest.approx(abs(r), rel=1e-8)
        # a one-sided p, or one df fewer, would be told apart
        assert abs(ref / 2 - p) > 1e-3 * p
        off = 2 * float(stats.t.sf(abs(r) * math.sqrt(df / (1 - r * r)), df - 1))
        assert abs(off - p) > 1e-9 * p  # well above the rel=1e-10 tolerance
    # with df = n - 2 the correlation's p is scipy's pearsonr p
    n = 25
    x = rng.standard_normal(n)
    y = 0.3 * x + rng.standard_normal(n)
    r, p_ref = stats.pearsonr(x, y)
    assert corr_t_p(float(r), n - 2) == pytest.approx(float(p_ref), rel=1e-10)


def test_r_for_p_inverts_tiny_p_values() -> None:
    for df, r in ((47.3, 0.97), (500.0, 0.82), (47.3, 0.82)):
        p = corr_t_p(r, df)
        assert p > 0
        assert r_for_p(p, df) == pytest.approx(r, rel=1e-8)
