"""Timeline: rolling correlation of the two speakers' window series over a few
consecutive windows, per feature and averaged over the tone and the tempo features
(descriptive, no p-values)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from dsp.mirroring.inputs import TEMPO_FEATURES, TONE_FEATURES, FloatArray
from dsp.mirroring.results import TimelinePoint, clean


def _rolling_r(a: FloatArray, b: FloatArray, span: int) -> FloatArray:
    """Pearson r over each run of ``span`` consecutive windows (NaN when < span - 1 pairs)."""
    w = a.size
    g = w - span + 1
    if g <= 0:
        return np.zeros(0)
    idx = np.arange(g)[:, None] + np.arange(span)[None, :]
    aa, bb = a[idx], b[idx]
    ok = np.isfinite(aa) & np.isfinite(bb)
    cnt = ok.sum(axis=1)
    a0 = np.where(ok, aa, 0.0)
    b0 = np.where(ok, bb, 0.0)
    with np.errstate(all="ignore"):
        ma = a0.sum(axis=1) / cnt
        mb = b0.sum(axis=1) / cnt
        da = np.where(ok, aa - ma[:, None], 0.0)
        db = np.where(ok, bb - mb[:, None], 0.0)
        den = np.sqrt((da**2).sum(axis=1) * (db**2).sum(axis=1))
        r = np.where((cnt >= max(3, span - 1)) & (den > 0), (da * db).sum(axis=1) / den, np.nan)
    return np.asarray(r, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def _mean_or_none(vals: Sequence[float | None]) -> float | None:
    good = [v for v in vals if v is not None and math.isfinite(v)]
    return float(np.mean(good)) if good else None


def timeline(
    rows: Mapping[str, tuple[FloatArray, FloatArray]],
    starts: FloatArray,
    window_s: float,
    span: int,
) -> tuple[TimelinePoint, ...]:
    w = starts.size
    if w < span:
        return ()
    per = {name: _rolling_r(a, c, span) for name, (a, c) in rows.items()}
    points = []
    for g in range(w - span + 1):
        vals = {name: clean(float(r[g])) for name, r in per.items()}
        points.append(
            TimelinePoint(
                start_s=float(starts[g]),
                end_s=float(starts[g + span - 1] + window_s),
                tone_r=_mean_or_none([vals[n] for n in TONE_FEATURES]),
                tempo_r=_mean_or_none([vals[n] for n in TEMPO_FEATURES]),
                features=tuple(vals.items()),
            )
        )
    return tuple(points)
