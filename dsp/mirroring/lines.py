"""Each speaker's line through their own values over the call (GLS with the speaker's
AR(1)-plus-noise errors), and what two such lines say: whether the speakers' distance
shrank or grew, where they stood at the start and the end, and who moved."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg, special

from dsp.mirroring.inputs import FloatArray
from dsp.mirroring.persistence import best_fit, debiased, whittle_log_lik
from dsp.mirroring.results import Movement
from dsp.mirroring.stats import t_sf

#: Fewest finite values a speaker needs for a line (and for their persistence).
MIN_LINE_VALUES = 20


@dataclass(frozen=True)
class SpeakerLine:
    """``value = level + slope * t`` (``t`` in minutes on the call clock)."""

    level: float
    slope: float  # feature units per minute
    cov: FloatArray  # (2, 2) covariance of (level, slope)
    n_eff: float  # values' worth of independent information, given their persistence
    first_min: float  # time of the speaker's first and last value, minutes
    last_min: float
    phi: float  # the persistence the errors were given (AR(1) coefficient, its share)
    share: float
    start_s: FloatArray  # the finite values the line went through, time order
    values: FloatArray

    def at(self, t_min: float) -> tuple[float, float]:
        """The line's value at ``t_min`` and its variance."""
        x = np.array([1.0, t_min])
        return self.level + self.slope * t_min, float(x @ self.cov @ x)


def speaker_line(
    start_s: FloatArray, values: FloatArray, persistence: tuple[float, float]
) -> SpeakerLine | None:
    """GLS line through one speaker's values (time order) with AR(1)-plus-noise errors,
    ``persistence = (phi, share)`` (:func:`speaker_lines`); None with fewer than
    :data:`MIN_LINE_VALUES` values or no time span."""
    ok = np.isfinite(start_s) & np.isfinite(values)
    if ok.sum() < MIN_LINE_VALUES:
        return None
    order = np.argsort(start_s[ok])
    t = start_s[ok][order] / 60.0
    v = values[ok][order]
    if np.ptp(t) <= 0:
        return None
    phi, share = persistence
    n = v.size
    lags = np.arange(1, n)
    autocorr = np.concatenate([[1.0], share * phi**lags])
    x = np.column_stack([np.ones(n), t])
    rx = linalg.solve_toeplitz(autocorr, x)
    xtx = x.T @ rx
    b = np.linalg.solve(xtx, rx.T @ v)
    e = v - x @ b
    s2 = float(e @ linalg.solve_toeplitz(autocorr, e)) / max(n - 2, 1)
    n_eff = n / (1.0 + 2.0 * float(np.sum((1.0 - lags / n) * autocorr[1:])))
    return SpeakerLine(
        level=float(b[0]),
        slope=float(b[1]),
        cov=np.asarray(s2 * np.linalg.inv(xtx), dtype=np.float64),
        n_eff=n_eff,
        first_min=float(t[0]),
        last_min=float(t[-1]),
        phi=float(phi),
        share=float(share),
        start_s=np.asarray(start_s[ok][order], dtype=np.float64),
        values=np.asarray(v, dtype=np.float64),
    )


def _detrended(start_s: FloatArray, values: FloatArray) -> FloatArray | None:
    """A speaker's finite values in time order less their line (on the value index); None
    with too few values or none left around the line (a value held exactly)."""
    ok = np.isfinite(start_s) & np.isfinite(values)
    if ok.sum() < MIN_LINE_VALUES:
        return None
    v = values[ok][np.argsort(start_s[ok])]
    idx = np.arange(v.size, dtype=np.float64)
    r = v - np.polyval(np.polyfit(idx, v, 1), idx)
    if float(np.std(r)) <= 1e-9 * max(float(np.max(np.abs(v))), 1e-12):
        return None
    return np.asarray(r, dtype=np.float64)


def speaker_lines(
    own: Sequence[tuple[FloatArray, FloatArray | None]],
) -> tuple[SpeakerLine | None, SpeakerLine | None]:
    """Both speakers' lines (agent, customer) from their ``(start_s, values)`` series.

    Each speaker's persistence is fitted on their detrended values (so a steady trend is
    not read as wandering) and used where it beats white noise
    (:data:`~dsp.mirroring.persistence.PERSISTENCE_LR`); a speaker whose own values do not
    show it gets the persistence both speakers' values show together, if they do: with a
    few dozen per-turn values one speaker's persistence is often real but not visible
    alone. A value held exactly has no wandering at all.
    """
    series = [(np.asarray(t, dtype=np.float64), v) for t, v in own]
    resid = [None if v is None else _detrended(t, v) for t, v in series]
    log_lik = [None if r is None else whittle_log_lik(r) for r in resid]
    ll_a, ll_c = log_lik
    joint = None if ll_a is None or ll_c is None else best_fit(ll_a + ll_c)
    lines: list[SpeakerLine | None] = []
    for (t, v), r, ll in zip(series, resid, log_lik, strict=True):
        if v is None:
            lines.append(None)
            continue
        phi, share = (0.0, 1.0) if ll is None else best_fit(ll)
        if phi == 0.0 and ll is not None and joint is not None:
            phi, share = joint
        n = v.size if r is None else r.size
        lines.append(speaker_line(t, np.asarray(v, dtype=np.float64), (debiased(phi, n), share)))
    return lines[0], lines[1]


def _span(agent: SpeakerLine, customer: SpeakerLine) -> tuple[float, float]:
    return min(agent.first_min, customer.first_min), max(agent.last_min, customer.last_min)


def _df(agent: SpeakerLine, customer: SpeakerLine) -> float:
    """Degrees of freedom of the slope difference: the scarcer speaker's effective values
    less the line's two coefficients and the persistence estimated from them."""
    return max(min(agent.n_eff, customer.n_eff) - 3.0, 1.0)


def line_convergence(agent: SpeakerLine, customer: SpeakerLine) -> tuple[float, float] | None:
    """``(value, p)``: the change of the lines' distance per minute (positive = closer) and
    the two-sided t-test of the slope difference; None when the lines cross inside the
    call (one speaker overtakes the other: the distance is not a line)."""
    t0, t1 = _span(agent, customer)
    d0 = agent.at(t0)[0] - customer.at(t0)[0]
    d1 = agent.at(t1)[0] - customer.at(t1)[0]
    if d0 * d1 <= 0.0:
        return None
    value = -math.copysign(1.0, d0) * (agent.slope - customer.slope)
    se = math.sqrt(float(agent.cov[1, 1] + customer.cov[1, 1]))
    if se <= 0.0:
        return None
    return value, float(2.0 * t_sf(abs(value / se), _df(agent, customer)))


def interval(value: float, se: float, q: float) -> tuple[float, float]:
    return (value - q * se, value + q * se)


def folded(value: float, se: float, q: float) -> tuple[float, tuple[float, float]]:
    """``|value|`` and its interval, from the ``q``-quantile interval of ``value``."""
    lo, hi = interval(value, se, q)
    if lo <= 0.0 <= hi:
        return abs(value), (0.0, max(-lo, hi))
    return abs(value), (min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))


def line_movement(agent: SpeakerLine, customer: SpeakerLine) -> Movement:
    """Where the lines stood at the first and the last value of the call and how far each
    speaker's line moved toward (positive) or away from the other's starting level, with
    95 % t intervals."""
    t0, t1 = _span(agent, customer)
    q = float(special.stdtrit(_df(agent, customer), 0.975))
    ends = []
    for t in (t0, t1):
        (va, wa), (vc, wc) = agent.at(t), customer.at(t)
        ends.append(folded(va - vc, math.sqrt(wa + wc), q))
    d0 = agent.at(t0)[0] - customer.at(t0)[0]
    toward = -math.copysign(1.0, d0) if d0 != 0.0 else 1.0
    span = t1 - t0
    moved = [
        (sign * line.slope * span, math.sqrt(max(float(line.cov[1, 1]), 0.0)) * span)
        for line, sign in ((agent, toward), (customer, -toward))
    ]
    (am, am_se), (cm, cm_se) = moved
    return Movement(
        distance_start=ends[0][0],
        distance_start_ci=ends[0][1],
        distance_end=ends[1][0],
        distance_end_ci=ends[1][1],
        agent_moved=am,
        agent_moved_ci=interval(am, am_se, q),
        customer_moved=cm,
        customer_moved_ci=interval(cm, cm_se, q),
    )
