"""Scores: per dimension (tone, tempo) and direction, the features' directional
synchrony deviates combined with Stouffer's rule for correlated tests, mapped to 0-100
(50 = chance pairing)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import special

from dsp.mirroring.inputs import TEMPO_FEATURES, TONE_FEATURES, FloatArray, IntArray
from dsp.mirroring.results import FeatureMirroring, Scores
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
    zs: Sequence[float | None],
    residuals: Sequence[tuple[IntArray, FloatArray, FloatArray] | None] = (),
) -> float | None:
    """``100 Phi(Z)``, ``Z = sum z_f / sqrt(sum_fg R_fg)`` with ``R`` the features' chance
    correlation (:func:`_null_corr`; identity when residuals are not given): Stouffer's
    rule for correlated deviates, so two near-duplicate measurements are not counted twice."""
    idx = [i for i, z in enumerate(zs) if z is not None]
    if not idx:
        return None
    total = 0.0
    for i in idx:
        for j in idx:
            if i == j:
                total += 1.0
            elif i < len(residuals) and j < len(residuals):
                ri, rj = residuals[i], residuals[j]
                total += _null_corr(ri, rj) if ri is not None and rj is not None else 0.0
    big_z = sum(float(zs[i] or 0.0) for i in idx) / math.sqrt(max(total, 1.0))
    return float(100.0 * special.ndtr(big_z))


def call_scores(
    features: Mapping[str, FeatureMirroring],
    residuals_agent: Mapping[str, Residuals],
    residuals_customer: Mapping[str, Residuals],
) -> Scores:
    """Tone and tempo scores of both directions from the features' directional tests
    (``residuals_*``: each feature's residuals, where its test ran)."""
    return Scores(
        tone_agent=score(
            [features[n].agent_follows_customer.z for n in TONE_FEATURES],
            [residuals_agent.get(n) for n in TONE_FEATURES],
        ),
        tone_customer=score(
            [features[n].customer_follows_agent.z for n in TONE_FEATURES],
            [residuals_customer.get(n) for n in TONE_FEATURES],
        ),
        tempo_agent=score(
            [features[n].agent_follows_customer.z for n in TEMPO_FEATURES],
            [residuals_agent.get(n) for n in TEMPO_FEATURES],
        ),
        tempo_customer=score(
            [features[n].customer_follows_agent.z for n in TEMPO_FEATURES],
            [residuals_customer.get(n) for n in TEMPO_FEATURES],
        ),
    )
