"""The frozen results of :func:`dsp.mirroring.analyze_mirroring`: plain Python floats /
ints / strings / ``None``; ``to_dict()`` gives each one's JSON shape (the report's
``mirroring`` section, declared in ``models.report``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsp.mirroring.inputs import PROSODY_FEATURES


def clean(x: float | None) -> float | None:
    """``x`` as a Python float, None when missing or not finite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class DirectionalSync:
    """Follower's turn-initial value vs the leader's preceding turn-final value."""

    r: float | None
    p: float | None
    p_adj: float | None
    n: int
    z: float | None
    reason: str | None
    df: int | None = None  # residual degrees of freedom of the t-test
    r_needed: float | None = None  # smallest r flagged on this call, whatever the others

    @property
    def n_eff(self) -> float | None:
        """Exchanges the test's degrees of freedom rest on: all ``n`` (the plain df is
        calibrated, see docs/mirroring.md); None without a result."""
        return None if self.r is None else float(self.n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "p": self.p,
            "p_adj": self.p_adj,
            "n": self.n,
            "n_eff": self.n_eff,
            "r_needed": self.r_needed,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class WindowedSync:
    """Prewhitened lagged cross-correlation of the window series."""

    r: float | None
    lag_s: float | None
    p: float | None
    p_adj: float | None
    n: int
    chance_r: float | None
    p_shift: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "r": self.r,
            "lag_s": self.lag_s,
            "p": self.p,
            "p_adj": self.p_adj,
            "n": self.n,
            "chance_r": self.chance_r,
            "p_shift": self.p_shift,
            "reason": self.reason,
        }


Interval = tuple[float, float]


@dataclass(frozen=True)
class Movement:
    """The fitted distance at the start and the end of the call and how far each speaker
    moved toward the other (feature units), each with its 95 % interval."""

    distance_start: float
    distance_start_ci: Interval
    distance_end: float
    distance_end_ci: Interval
    agent_moved: float
    agent_moved_ci: Interval
    customer_moved: float
    customer_moved_ci: Interval


@dataclass(frozen=True)
class Convergence:
    """Trend of the speakers' distance over the call."""

    value: float | None
    r_time: float | None
    p: float | None
    p_adj: float | None
    direction: str | None
    n: int
    movement: Movement | None
    sham_z: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        m = self.movement

        def ci(x: Interval | None) -> list[float] | None:
            return None if x is None else [x[0], x[1]]

        return {
            "value": self.value,
            "unit": "per_min",
            "r_time": self.r_time,
            "p": self.p,
            "p_adj": self.p_adj,
            "direction": self.direction,
            "n": self.n,
            "distance_start": None if m is None else m.distance_start,
            "distance_start_ci": ci(None if m is None else m.distance_start_ci),
            "distance_end": None if m is None else m.distance_end,
            "distance_end_ci": ci(None if m is None else m.distance_end_ci),
            "agent_moved": None if m is None else m.agent_moved,
            "agent_moved_ci": ci(None if m is None else m.agent_moved_ci),
            "customer_moved": None if m is None else m.customer_moved,
            "customer_moved_ci": ci(None if m is None else m.customer_moved_ci),
            "sham_z": self.sham_z,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Proximity:
    """Local (adjacent vs non-adjacent exchanges) and global (means) proximity."""

    local_value: float | None
    local_p: float | None
    local_p_adj: float | None
    local_n: int
    local_reason: str | None
    global_distance: float | None
    global_sham_z: float | None
    global_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "local": {
                "value": self.local_value,
                "p": self.local_p,
                "p_adj": self.local_p_adj,
                "n": self.local_n,
                "reason": self.local_reason,
            },
            "global": {
                "distance": self.global_distance,
                "sham_z": self.global_sham_z,
                "reason": self.global_reason,
            },
        }


@dataclass(frozen=True)
class FeatureMirroring:
    """Every mirroring statistic of one feature."""

    name: str
    unit: str
    proximity: Proximity
    convergence: Convergence
    agent_follows_customer: DirectionalSync
    customer_follows_agent: DirectionalSync
    windowed: WindowedSync
    follower: str | None
    mirrored: bool | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "proximity": self.proximity.to_dict(),
            "convergence": self.convergence.to_dict(),
            "synchrony": {
                "agent_follows_customer": self.agent_follows_customer.to_dict(),
                "customer_follows_agent": self.customer_follows_agent.to_dict(),
                "windowed": self.windowed.to_dict(),
            },
            "follower": self.follower,
            "mirrored": self.mirrored,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TimelinePoint:
    """Rolling correlation of the two speakers over a few consecutive windows."""

    start_s: float
    end_s: float
    tone_r: float | None
    tempo_r: float | None
    features: tuple[tuple[str, float | None], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "tone_r": self.tone_r,
            "tempo_r": self.tempo_r,
            "features": dict(self.features),
        }


#: The three readings of a score: its confidence interval above 0, around 0, below 0.
VERDICTS = ("above chance", "within chance", "below chance")


@dataclass(frozen=True)
class DirectionScore:
    """How strongly one speaker followed the other in one dimension (tone or tempo).

    ``r`` is the dimension's following strength (the features' partial correlations
    averaged on Fisher's z scale), ``r_low`` / ``r_high`` its confidence interval (level
    ``1 - alpha``), ``score`` = ``100 * max(0, r_low)``: the strength the call shows
    beyond doubt, 0 whenever chance could explain it. ``verdict`` reads the interval.
    """

    score: float
    r: float
    r_low: float
    r_high: float
    z: float
    verdict: str
    features: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "verdict": self.verdict,
            "r": self.r,
            "r_low": self.r_low,
            "r_high": self.r_high,
            "z": self.z,
            "features": self.features,
        }


@dataclass(frozen=True)
class Scores:
    """Per dimension and direction, how strongly one speaker followed the other (None when
    no feature of the dimension has a directional result)."""

    tone_agent: DirectionScore | None
    tone_customer: DirectionScore | None
    tempo_agent: DirectionScore | None
    tempo_customer: DirectionScore | None

    def to_dict(self) -> dict[str, Any]:
        def one(s: DirectionScore | None) -> dict[str, Any] | None:
            return None if s is None else s.to_dict()

        return {
            "tone": {"agent": one(self.tone_agent), "customer": one(self.tone_customer)},
            "tempo": {"agent": one(self.tempo_agent), "customer": one(self.tempo_customer)},
        }


@dataclass(frozen=True)
class MirroringResult:
    """Result of :func:`analyze_mirroring`."""

    features: tuple[FeatureMirroring, ...]
    timeline: tuple[TimelinePoint, ...]
    scores: Scores
    n_exchanges: int
    n_windows: int
    n_shams: int
    alpha: float
    correction: str
    warnings: tuple[str, ...]

    def feature(self, name: str) -> FeatureMirroring:
        """The result of feature ``name``."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def detectable_r(self) -> float | None:
        """Median ``r_needed`` of the voice features' directional tests: how strong
        following must be for this call to show it (None when no such test ran)."""
        needed = [
            s.r_needed
            for f in self.features
            if f.name in PROSODY_FEATURES
            for s in (f.agent_follows_customer, f.customer_follows_agent)
            if s.r_needed is not None
        ]
        return float(np.median(needed)) if needed else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": {f.name: f.to_dict() for f in self.features},
            "timeline": [t.to_dict() for t in self.timeline],
            "scores": self.scores.to_dict(),
            "n_exchanges": self.n_exchanges,
            "n_windows": self.n_windows,
            "n_shams": self.n_shams,
            "alpha": self.alpha,
            "correction": self.correction,
            "detectable_r": self.detectable_r,
            "warnings": list(self.warnings),
        }
