"""Scores: per dimension (tone, tempo) and direction, how strongly one speaker followed
the other, with a confidence interval, so that chance reads as chance (score 0).

The dimension's strength is the mean of its features' directional partial correlations on
Fisher's z scale, ``zbar = mean_f atanh(r_f)``, each ``atanh(r_f)`` with standard error
``1 / sqrt(df_f - 1)``; the features are correlated measurements (speaking and
articulation rate nearly one), so the variance of the mean counts their chance
correlation ``R_fg`` (:func:`_null_corr`): ``var = sum_fg R_fg se_f se_g / k^2``. The
interval is ``tanh(zbar -+ z_{1-alpha/2} sd)``; ``z = zbar / sd`` (N(0, 1) under chance
pairing), ``score = 100 * max(0, r_low)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import special

from dsp.mirroring.inputs import TEMPO_FEATURES, TONE_FEATURES, FloatArray, IntArray
from dsp.mirroring.results import DirectionalSync, DirectionScore, FeatureMirroring, Scores
from dsp.mirroring.stats import corr
from dsp.mirroring.synchrony import Residuals


def _null_corr(
    a: tuple[IntArray, FloatArray, FloatArray], b: tuple[IntArray, FloatArray, FloatArray]
) -> float:
    """Chance correlation of two features' partial correlations ``r(u, v)`` in one direction.

    For independent pairs ``(u_f, v_f)``, ``corr(r_f, r_g) ~ corr(u_f, u_g) corr(v_f, v_g)``
    (Pearson 1896 large-sample covariance of correlations under the null); computed on the
    exchanges both features have (0 with fewer than 5).
    """
    common, ia, ib = np.intersect1d(a[0], b[0], return_indices=True)
    if common.size < 5:
        return 0.0
    cu = corr(a[1][ia], b[1][ib])
    cv = corr(a[2][ia], b[2][ib])
    if not (math.isfinite(cu) and math.isfinite(cv)):
        return 0.0
    return float(np.clip(cu * cv, -1.0, 1.0))


def score(
    tests: Sequence[DirectionalSync],
    residuals: Sequence[Residuals | None] = (),
    *,
    alpha: float = 0.05,
) -> DirectionScore | None:
    """One dimension's :class:`DirectionScore` from its features' directional tests (in
    the order of ``residuals``, each feature's residuals where its test ran; without
    residuals the features count as independent)."""
    idx = [i for i, t in enumerate(tests) if t.r is not None and t.df is not None]
    if not idx:
        return None
    fz = {i: math.atanh(float(np.clip(tests[i].r or 0.0, -0.999999, 0.999999))) for i in idx}
    se = {i: 1.0 / math.sqrt(max(float(tests[i].df or 0) - 1.0, 1.0)) for i in idx}
    var = 0.0
    for i in idx:
        for j in idx:
            rho = 1.0
            if i != j:
                ri = residuals[i] if i < len(residuals) else None
                rj = residuals[j] if j < len(residuals) else None
                rho = _null_corr(ri, rj) if ri is not None and rj is not None else 0.0
            var += rho * se[i] * se[j]
    k = len(idx)
    zbar = sum(fz.values()) / k
    # negative chance correlations (estimated) never make the mean surer than k independent
    # features would
    sd = math.sqrt(max(var, min(se.values()) ** 2 * k)) / k
    crit = float(-special.ndtri(alpha / 2.0))
    low, high = zbar - crit * sd, zbar + crit * sd
    verdict = "above chance" if low > 0 else "below chance" if high < 0 else "within chance"
    return DirectionScore(
        score=100.0 * max(0.0, math.tanh(low)),
        r=math.tanh(zbar),
        r_low=math.tanh(low),
        r_high=math.tanh(high),
        z=zbar / sd,
        verdict=verdict,
        features=k,
    )


def call_scores(
    features: Mapping[str, FeatureMirroring],
    residuals_agent: Mapping[str, Residuals],
    residuals_customer: Mapping[str, Residuals],
    *,
    alpha: float = 0.05,
) -> Scores:
    """Tone and tempo scores of both directions from the features' directional tests
    (``residuals_*``: each feature's residuals, where its test ran)."""

    def one(names: Sequence[str], agent: bool) -> DirectionScore | None:
        tests = [
            features[n].agent_follows_customer if agent else features[n].customer_follows_agent
            for n in names
        ]
        res = residuals_agent if agent else residuals_customer
        return score(tests, [res.get(n) for n in names], alpha=alpha)

    return Scores(
        tone_agent=one(TONE_FEATURES, True),
        tone_customer=one(TONE_FEATURES, False),
        tempo_agent=one(TEMPO_FEATURES, True),
        tempo_customer=one(TEMPO_FEATURES, False),
    )
