"""Per-feature verdicts after correction: each test's ``p_adj``, the convergence
direction, who follows (``follower``) and whether the feature is ``mirrored``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dsp.mirroring.correction import TestKey, with_padj
from dsp.mirroring.inputs import UNITS, FloatArray
from dsp.mirroring.proximity import GlobalProximity, LocalProximity
from dsp.mirroring.results import (
    Convergence,
    DirectionalSync,
    FeatureMirroring,
    Proximity,
    WindowedSync,
    clean,
)
from dsp.mirroring.synchrony import Residuals


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """One feature's statistics before the call's correction."""

    name: str
    agent: DirectionalSync  # agent follows customer
    customer: DirectionalSync  # customer follows agent
    windowed: WindowedSync
    convergence: Convergence
    local: LocalProximity
    global_: GlobalProximity
    rows: tuple[FloatArray, FloatArray]  # window rows (agent, customer), z-scored if ZSCORED
    residuals_agent: Residuals | None
    residuals_customer: Residuals | None

    def family(self) -> tuple[tuple[str, str, float | None], ...]:
        """The feature's tests as ``(feature, kind, raw p)``, in the family's order."""
        return (
            (self.name, "agent", self.agent.p),
            (self.name, "customer", self.customer.p),
            (self.name, "windowed", self.windowed.p),
            (self.name, "convergence", self.convergence.p),
            (self.name, "proximity", self.local[1]),
        )


def feature_verdict(
    raw: FeatureStats,
    padj: Mapping[TestKey, float],
    p_flagged: Mapping[TestKey, float],
    alpha: float,
) -> FeatureMirroring:
    """The feature's result after correction (``padj``, ``p_flagged``: from
    :func:`dsp.mirroring.correction.correct_family`).

    ``follower``: the direction with the larger ``r`` when that direction is significant
    (positive ``r``); ``mirrored``: any test significant in the mirroring sense (positive
    synchrony, converging, positive local proximity), None when no test could run.
    """
    name = raw.name
    sa = with_padj(raw.agent, padj.get((name, "agent")), p_flagged.get((name, "agent")))
    sc = with_padj(raw.customer, padj.get((name, "customer")), p_flagged.get((name, "customer")))
    ws = raw.windowed
    ws = WindowedSync(
        clean(ws.r), ws.lag_s, clean(ws.p), padj.get((name, "windowed")), ws.n,
        clean(ws.chance_r), ws.p_shift, ws.reason,
    )  # fmt: skip
    cv = raw.convergence
    cp = padj.get((name, "convergence"))
    direction = None
    if cv.value is not None and cp is not None:
        direction = "none"
        if cp < alpha:
            direction = "converging" if cv.value > 0 else "diverging"
    cv = Convergence(
        clean(cv.value), clean(cv.r_time), clean(cv.p), cp, direction, cv.n, cv.movement,
        clean(cv.sham_z), cv.reason,
    )  # fmt: skip
    lv, lp, ln, lr = raw.local
    gd, gz, gr = raw.global_
    prox = Proximity(
        clean(lv), clean(lp), padj.get((name, "proximity")), ln, lr,
        clean(gd), clean(gz), gr,
    )  # fmt: skip
    sig_a = _sig(sa.r, sa.p_adj, alpha)
    sig_c = _sig(sc.r, sc.p_adj, alpha)
    follower: str | None = None
    if sig_a and not _larger(sc.r, sa.r):
        follower = "agent"
    elif sig_c and not _larger(sa.r, sc.r):
        follower = "customer"
    tested = [x for x in (sa.p_adj, sc.p_adj, ws.p_adj, cp, prox.local_p_adj) if x is not None]
    mirrored: bool | None
    reason = None
    if not tested:
        mirrored = None
        # the same reason (e.g. too few windows) can come from several tests: once each
        parts = dict.fromkeys(r for r in (sa.reason, sc.reason, ws.reason, cv.reason) if r)
        reason = "; ".join(parts) or "no test could run"
    else:
        mirrored = bool(
            sig_a
            or sig_c
            or _sig(ws.r, ws.p_adj, alpha)
            or direction == "converging"
            or _sig(prox.local_value, prox.local_p_adj, alpha)
        )
    return FeatureMirroring(
        name=name,
        unit=UNITS[name],
        proximity=prox,
        convergence=cv,
        agent_follows_customer=sa,
        customer_follows_agent=sc,
        windowed=ws,
        follower=follower,
        mirrored=mirrored,
        reason=reason,
    )


def _sig(value: float | None, p_adj: float | None, alpha: float) -> bool:
    return value is not None and p_adj is not None and p_adj < alpha and value > 0


def _larger(x: float | None, y: float | None) -> bool:
    return x is not None and y is not None and x > y
