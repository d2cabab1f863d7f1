"""The entry point :func:`analyze_mirroring`: one call's mirroring statistics, in four
steps: each feature's raw statistics, the correction over the call's test family, each
feature's verdicts, the scores (and the descriptive timeline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.errors import ParameterError
from dsp.mirroring.convergence import feature_convergence
from dsp.mirroring.correction import CORRECTION, correct_family
from dsp.mirroring.exchanges import (
    Exchanges,
    Turns,
    exchanges,
    history_mean,
    merge_turns,
    speaker_turns,
)
from dsp.mirroring.inputs import (
    FEATURES,
    TIMING_FEATURES,
    ZSCORED,
    FloatArray,
    ShamCall,
    SpeakerUnits,
    WindowSeries,
    canonical,
    unit_series,
)
from dsp.mirroring.lines import SpeakerLine, speaker_lines
from dsp.mirroring.proximity import ProximityRows, global_proximity, local_proximity
from dsp.mirroring.results import Convergence, MirroringResult, WindowedSync
from dsp.mirroring.scores import call_scores
from dsp.mirroring.stats import zscore
from dsp.mirroring.synchrony import (
    SYNC_HISTORY_SPAN,
    Residuals,
    SyncDesign,
    directional_sync,
    windowed_sync,
)
from dsp.mirroring.timeline import timeline
from dsp.mirroring.verdicts import FeatureStats, feature_verdict


def analyze_mirroring(
    agent: SpeakerUnits,
    customer: SpeakerUnits,
    windows: WindowSeries,
    *,
    shams: Sequence[ShamCall] = (),
    rng: np.random.Generator | None = None,
    alpha: float = 0.05,
    min_exchanges: int = 12,
    min_windows: int = 10,
    max_lag_windows: int = 2,
    proximity_offsets: int = 6,
    timeline_span: int = 8,
) -> MirroringResult:
    """Mirroring statistics of one call, per feature, with corrected significance.

    Parameters
    ----------
    agent, customer : SpeakerUnits
        Each speaker's IPUs (time order, turn labels, per-IPU features).
    windows : WindowSeries
        Both speakers' window series (row 0 agent, row 1 customer), ``W`` windows.
    shams : sequence of ShamCall
        Other calls (batch analysis) used as sham partners aligned by relative time: the
        agent against their customers and their agents against this customer.
    rng : numpy.random.Generator, optional
        Unused by the current (deterministic) procedures; accepted so callers can pass one
        and results stay reproducible if a randomised baseline is added.
    alpha : float
        Significance level after Benjamini-Hochberg correction across the call's tests.
    min_exchanges : int
        Fewest usable exchanges (per direction) for a synchrony or local proximity value.
    min_windows : int
        Fewest windows where both speakers have a value, for windowed measures.
    max_lag_windows : int
        Lags ``-max_lag_windows..max_lag_windows`` (in hops) for windowed synchrony.
    proximity_offsets : int
        Non-adjacent partner turns 2..``proximity_offsets`` away form the local baseline.
    timeline_span : int
        Consecutive windows per rolling correlation in the timeline (8 windows of 16 s / 8 s
        span 72 s: fewer make the correlation mostly noise).

    Returns
    -------
    MirroringResult
        Frozen; see docs/mirroring.md for each statistic. ``to_dict()`` gives
        ``features[name] = {proximity, convergence, synchrony, follower, mirrored, reason}``,
        ``timeline`` and ``scores``.

    Raises
    ------
    ParameterError
        Out-of-range parameters or inconsistent array shapes (never for missing data).
    """
    del rng
    return _measure(
        agent,
        customer,
        windows,
        shams=shams,
        settings=_Settings(
            alpha=alpha,
            min_exchanges=min_exchanges,
            min_windows=min_windows,
            max_lag_windows=max_lag_windows,
            proximity_offsets=proximity_offsets,
            timeline_span=timeline_span,
        ),
    )


@dataclass(eq=False)
class Design:
    """What the tests of one call read, filled by :func:`_measure` when asked (package
    internal: ``dsp.mirroring.evidence`` turns it into tables)."""

    turns: Turns | None = None
    centres_s: FloatArray | None = None
    #: per feature: the window rows (agent, customer) windowed synchrony and convergence read
    rows: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)
    #: per feature: the directional tests' rows, agent following, then customer following
    sync_agent: dict[str, SyncDesign] = field(default_factory=dict)
    sync_customer: dict[str, SyncDesign] = field(default_factory=dict)
    proximity: dict[str, ProximityRows] = field(default_factory=dict)
    #: per feature: the speakers' lines (agent, customer) convergence read
    lines: dict[str, tuple[SpeakerLine | None, SpeakerLine | None]] = field(default_factory=dict)


def _measure(
    agent: SpeakerUnits,
    customer: SpeakerUnits,
    windows: WindowSeries,
    *,
    shams: Sequence[ShamCall],
    settings: _Settings,
    design: Design | None = None,
) -> MirroringResult:
    """:func:`analyze_mirroring` with its keyword parameters as ``settings``; ``design``
    (optional) receives what each test read."""
    alpha = settings.alpha
    timeline_span = settings.timeline_span
    settings.check()
    turns = merge_turns(
        speaker_turns(agent, 0, FEATURES), speaker_turns(customer, 1, FEATURES), FEATURES
    )
    exs = (exchanges(turns, follower=0), exchanges(turns, follower=1))  # agent answers first
    clock = _Clock.of(windows)
    if design is not None:
        design.turns, design.centres_s = turns, clock.centres_s
    warnings: list[str] = []
    if turns.speaker.size == 0:
        warnings.append("no turns: no exchange-level statistics")

    raw = [
        _feature_stats(name, turns, exs, agent, customer, clock, shams, settings, design)
        for name in FEATURES
    ]
    padj, p_flagged = correct_family((t for f in raw for t in f.family()), alpha)
    features = tuple(feature_verdict(f, padj, p_flagged, alpha) for f in raw)
    scores = call_scores(
        {f.name: f for f in features},
        {f.name: f.residuals_agent for f in raw if f.residuals_agent is not None},
        {f.name: f.residuals_customer for f in raw if f.residuals_customer is not None},
        alpha=alpha,
    )
    return MirroringResult(
        features=features,
        timeline=timeline(
            {f.name: f.rows for f in raw}, clock.starts_s, clock.window_s, timeline_span
        ),
        scores=scores,
        n_exchanges=int(sum(ex.follower_turn.size for ex in exs)),
        n_windows=clock.starts_s.size,
        n_shams=len(shams),
        alpha=float(alpha),
        correction=CORRECTION,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class _Settings:
    """The keyword parameters of :func:`analyze_mirroring` the statistics read."""

    alpha: float
    min_exchanges: int
    min_windows: int
    max_lag_windows: int
    proximity_offsets: int
    timeline_span: int

    def check(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ParameterError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_exchanges < 6:
            raise ParameterError(f"min_exchanges must be >= 6, got {self.min_exchanges}")
        if self.min_windows < 6:
            raise ParameterError(f"min_windows must be >= 6, got {self.min_windows}")
        if self.max_lag_windows < 0:
            raise ParameterError(f"max_lag_windows must be >= 0, got {self.max_lag_windows}")
        if self.proximity_offsets < 2:
            raise ParameterError(f"proximity_offsets must be >= 2, got {self.proximity_offsets}")
        if self.timeline_span < 3:
            raise ParameterError(f"timeline_span must be >= 3, got {self.timeline_span}")


@dataclass(frozen=True, eq=False)
class _Clock:
    """The call's window clock and its values by canonical feature name (shapes checked)."""

    windows: WindowSeries
    starts_s: FloatArray
    centres_s: FloatArray
    window_s: float
    hop_s: float
    values: dict[str, Any]

    @classmethod
    def of(cls, windows: WindowSeries) -> _Clock:
        starts = np.asarray(windows.starts_s, dtype=np.float64).ravel()
        w = starts.size
        values = canonical(windows.values)
        for name, val in values.items():
            if np.shape(val) != (2, w):
                raise ParameterError(
                    f"window values {name!r} must have shape (2, {w}), got {np.shape(val)}"
                )
        return cls(
            windows=windows,
            starts_s=starts,
            centres_s=starts + float(windows.window_s) / 2.0,
            window_s=float(windows.window_s),
            hop_s=float(windows.hop_s),
            values=values,
        )

    def rows(self, name: str, zscored: bool) -> tuple[FloatArray, FloatArray]:
        """Agent's and customer's window rows of ``name`` (NaN without values)."""
        w = self.starts_s.size
        if name in self.values:
            v = np.asarray(self.values[name], dtype=np.float64)
            a_row, c_row = v[0].copy(), v[1].copy()
        else:
            a_row, c_row = np.full(w, np.nan), np.full(w, np.nan)
        if zscored:
            a_row, c_row = zscore(a_row), zscore(c_row)
        return a_row, c_row


def _feature_stats(
    name: str,
    turns: Turns,
    exs: tuple[Exchanges, Exchanges],
    agent: SpeakerUnits,
    customer: SpeakerUnits,
    clock: _Clock,
    shams: Sequence[ShamCall],
    settings: _Settings,
    design: Design | None = None,
) -> FeatureStats:
    """Step 1: one feature's statistics before correction (``design``: filled when given)."""
    sync_a_rows = None if design is None else design.sync_agent
    sync_c_rows = None if design is None else design.sync_customer
    zs = name in ZSCORED
    hist = history_mean(turns, name, SYNC_HISTORY_SPAN)
    res_a: dict[str, Residuals] = {}
    res_c: dict[str, Residuals] = {}
    sync_a = directional_sync(
        turns,
        exs[0],
        name,
        hist,
        min_exchanges=settings.min_exchanges,
        residuals=res_a,
        design=sync_a_rows,
    )
    sync_c = directional_sync(
        turns,
        exs[1],
        name,
        hist,
        min_exchanges=settings.min_exchanges,
        residuals=res_c,
        design=sync_c_rows,
    )
    local = local_proximity(
        turns,
        exs,
        name,
        offsets=settings.proximity_offsets,
        min_exchanges=settings.min_exchanges,
        zscored=zs,
        rows=None if design is None else design.proximity,
    )
    a_row, c_row = clock.rows(name, zs)
    if design is not None and name in clock.values:
        design.rows[name] = (a_row, c_row)
    has_windows = name in clock.values
    if has_windows:
        wsync = windowed_sync(
            a_row,
            c_row,
            clock.centres_s,
            clock.hop_s,
            max_lag=settings.max_lag_windows,
            min_windows=settings.min_windows,
        )
    else:
        wsync = WindowedSync(None, None, None, None, 0, None, None, _no_windows(name))
    if zs:
        conv = _no_convergence(
            "levels not comparable across channels (unknown gains): only movements "
            "(synchrony) are measured"
        )
        glob: tuple[float | None, float | None, str | None] = (
            None,
            None,
            "levels not comparable across channels (unknown gains)",
        )
    else:
        # each speaker's own IPU (or turn) series: persistence, global distance
        own = [unit_series(units, name) for units in (agent, customer)]
        lines = speaker_lines(own)
        if design is not None:
            design.lines[name] = lines
        if has_windows:
            conv = feature_convergence(
                a_row,
                c_row,
                clock.centres_s,
                clock.windows,
                lines,
                shams,
                name,
                min_windows=settings.min_windows,
            )
        else:
            conv = _no_convergence(_no_windows(name))
        glob = global_proximity([vals for _, vals in own], shams, name)
    return FeatureStats(
        name=name,
        agent=sync_a,
        customer=sync_c,
        windowed=wsync,
        convergence=conv,
        local=local,
        global_=glob,
        rows=(a_row, c_row),
        residuals_agent=res_a.get(name),
        residuals_customer=res_c.get(name),
    )


def _no_convergence(reason: str) -> Convergence:
    return Convergence(None, None, None, None, None, 0, None, None, reason)


def _no_windows(name: str) -> str:
    if name in TIMING_FEATURES:
        return "measured per turn only (no window series): exchange-level statistics only"
    return "no window values"
