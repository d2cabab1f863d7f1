"""The call's test family and its multiple-testing correction: every test that ran
(per feature: two directional synchronies, windowed synchrony, convergence, local
proximity) corrected together with weighted Benjamini-Hochberg, and what that leaves a
call able to show (``r_needed``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from dsp.mirroring.results import DirectionalSync, clean
from dsp.mirroring.stats import benjamini_hochberg, bh_rank_one_threshold, r_for_p

CORRECTION = "weighted-benjamini-hochberg"
#: Cohen's "large" correlation: when the call's median ``r_needed`` is above it, only
#: following stronger than a large effect could be shown (the report warns).
LARGE_EFFECT_R = 0.5
#: Prior weights of the test kinds in the weighted BH family (rescaled to mean 1 per call):
#: the exchange-level directional tests and convergence answer the product's questions
#: (who mirrors whom, do they get closer); windowed synchrony and local proximity mostly
#: restate the directional evidence at a coarser scale and get less of the error budget.
TEST_WEIGHTS = {
    "agent": 1.5,
    "customer": 1.5,
    "convergence": 1.5,
    "windowed": 0.5,
    "proximity": 0.25,
}
#: Multipliers of :data:`TEST_WEIGHTS` per feature (1 when absent): the timing features
#: come on top of the five voice features the product is about, with a quarter of the
#: weight, so adding them costs those five little power (bench/mirroring_eval.py).
FEATURE_WEIGHTS = {"pause": 0.25, "latency": 0.25}

#: A test of the family: (feature name, test kind, a key of :data:`TEST_WEIGHTS`).
TestKey = tuple[str, str]


def correct_family(
    tests: Iterable[tuple[str, str, float | None]], alpha: float
) -> tuple[dict[TestKey, float], dict[TestKey, float]]:
    """Weighted BH over the tests ``(feature, kind, raw p)`` that have a finite p.

    Returns ``p_adj`` per test and, per test, the raw p below which it is flagged at
    ``alpha`` whatever the other tests say (:func:`bh_rank_one_threshold`).
    """
    keys: list[TestKey] = []
    pvals: list[float] = []
    for name, kind, p in tests:
        if p is not None and math.isfinite(p):
            keys.append((name, kind))
            pvals.append(p)
    weights = np.array(
        [TEST_WEIGHTS[kind] * FEATURE_WEIGHTS.get(name, 1.0) for name, kind in keys],
        dtype=np.float64,
    )
    adj = benjamini_hochberg(np.asarray(pvals, dtype=np.float64), weights=weights)
    padj = {k: float(v) for k, v in zip(keys, adj, strict=True)}
    p_flagged = dict(zip(keys, bh_rank_one_threshold(weights, alpha), strict=True))
    return padj, p_flagged


def with_padj(s: DirectionalSync, p_adj: float | None, p_flagged: float | None) -> DirectionalSync:
    """``s`` after correction: its ``p_adj``, and ``r_needed`` from ``p_flagged``, the raw
    p below which the correction flags it whatever the other tests say."""
    r_needed = None
    if p_flagged is not None and s.df is not None:
        r_needed = r_for_p(p_flagged, s.df)
    return replace(s, r=clean(s.r), p=clean(s.p), p_adj=p_adj, r_needed=r_needed)
