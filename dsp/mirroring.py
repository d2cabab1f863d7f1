"""Tone and tempo mirroring statistics: proximity, convergence, synchrony, who follows whom.

Inputs are feature tables the pipeline computes from audio (:class:`SpeakerUnits` per
speaker, :class:`WindowSeries` for both speakers on one clock); the entry point is
:func:`analyze_mirroring`, which returns a frozen :class:`MirroringResult` made of plain
Python floats / ints / strings / ``None`` (``result.to_dict()`` gives the JSON shape).

Features (names as keys of the input dicts; the ``dsp.windows`` column names are accepted as
aliases, see :data:`FEATURE_ALIASES`):

==================== ============ =====================================================
name                 unit         compared how
==================== ============ =====================================================
pitch_level          st re 100 Hz levels in semitones (never Hz)
pitch_variability    st           directly
loudness             dB           z-scored per speaker (channel gains differ): only
                                  movements count; no level proximity / convergence
speaking_rate        syll/s       directly
articulation_rate    syll/s       directly
pause                s            per turn (mean pause between its IPUs), directly
latency              s            per turn (floor transfer gap before it, negative when
                                  the speaker took the floor in overlap), directly
==================== ============ =====================================================

The two timing features (:data:`TIMING_FEATURES`: ``dsp.turns.turn_mean_pauses``, and
``dsp.turns.turn_latencies``, turn-taking's floor gaps per turn) have one value per turn
and no window series: they get the exchange-level statistics (directional synchrony: does
the follower answer as fast, or pause as long, as the leader just did; local and global
proximity) but no windowed synchrony, convergence or timeline, and they are not part of
the tone / tempo scores (which keep the voice features they are defined on). Their tests
enter the call's family with a quarter of the weight (:data:`FEATURE_WEIGHTS`). Measured:
bench/mirroring_eval.py --strength 0.8 --only follow,converge,diverge over the 18
voice-feature rows 78.5 % at commit b9d59cc, before they were added, 78.4 % after;
--calls 200 --only independent,strong_ac,drift,walk false alarms 5.0 / 5.5 / 5.0 / 31 %
before, 4.5 / 4.5 / 5.0 / 30.5 % after (the timing tests included).

Statistics (definitions in ``shared/design/MIRRORING.md``)
----------------------------------------------------------
*Exchange* = the last turn of one speaker followed by the next turn of the other. Per
exchange the *leader* is the speaker who just spoke, the *follower* the one who answers.
The turn-final value is the mean of the turn's last finite IPU value and the turn's mean,
the turn-initial value likewise with the first IPU (the per-turn value when
``SpeakerUnits.turn_features`` has it). Why half edge, half turn: following shows at the
turn boundary, but one IPU is a noisy measurement, and a partner may copy a whole turn
rather than its last phrase. Measured (bench/mirroring_eval.py --calls 100 --strength 0.8
--only follow [--plant turn], mean right-follower rate over the 10 rows; before =
``_EDGE_WEIGHT = 1``): planted at the edge IPUs 80.0 % -> 81.3 %; planted on whole turns
71.9 % -> 82.8 %; espeak calls (bench/e2e_eval.py bench/out/calls) 14/36 -> 17/36.

Directional synchrony (``agent_follows_customer``, ``customer_follows_agent``)
    Partial correlation of the follower's turn-initial value ``y`` with the leader's
    preceding turn-final value ``x`` given the follower's own previous turn-final value and
    the mean of the follower's last 4 turn means (round 3: the single noisy previous value
    left the slow component of strongly autocorrelated speakers in ``y``, a spurious
    regression on the leader's equally slow ``x``; bench/mirroring_eval.py --calls 200:
    strong_ac 13.5 % -> 6.0 % flagged; e2e planted 14/36 -> 13/36): a
    lag-1 Granger-style regression (MIRRORING.md). The own-lag term absorbs the follower's
    autocorrelation and the consistency confound (B copies A and A is autocorrelated: A
    then looks entrained in a plain correlation). The p-value is a t-test on the partial
    correlation with ``df = n - 3``. Measured (bench/mirroring_sim.py calls with ~17
    exchanges per direction, like a 4-5 minute espeak call): raw ``p < 0.05`` in 5-7 % of
    independent, strongly autocorrelated, drifting and random-walk calls, so the plain df
    is calibrated; the former five own-past covariates, a time trend and Bartlett
    effective-n df cost 5-6 df of ~17 and most of the power (e2e planted detections 5/36
    -> 14/36 on bench/make_calls.py calls) with no FPR gain.
Windowed synchrony
    Each speaker's window series is detrended and prewhitened with an AR(1) fit; the
    residuals are cross-correlated at lags ``-max_lag..max_lag`` windows. ``r`` and
    ``lag_s`` are at the largest ``|r|``; ``p`` is that lag's Bartlett-corrected t-test
    p-value Sidak-corrected for the number of lags (the max-over-lags bias). ``chance_r``
    is the mean max-over-lags ``|r|`` of the same procedure against circular shifts of the
    customer's residuals (what chance gives on this call), ``p_shift`` the circular-shift
    p-value (resolution ``1/(shifts+1)``, reported, not used for the decision).
    ``lag_s > 0``: the customer's series follows the agent's by ``lag_s`` seconds.
Convergence
    On windows that do not overlap (every ``window_s / hop_s``-th window: they still
    cover all the speech) where both speakers have a value, the signed difference
    ``f_agent - f_customer`` is fitted with a linear trend with AR(1) errors
    (Prais-Winsten GLS). ``value`` is the change of the fitted distance per minute
    (positive = converging; when the fitted line crosses zero, one speaker overtaking the
    other, the trend of ``|f_agent - f_customer|`` is fitted instead), ``r_time`` the
    correlation of ``-|f_agent - f_customer|`` with time, ``p`` the slope's t-test. The
    AR(1) coefficient is the larger of the residual estimate and the window-to-window
    correlation implied by each speaker's IPU-level persistence (far more values than
    windows; the larger of the two speakers), so slow wandering is not called a trend.
    That persistence is a Whittle fit of AR(1) plus measurement noise to the speaker's
    detrended IPU series. With that floor the residual estimate is taken as it is;
    without one (too few IPU values) it is bias-corrected (Marriott & Pope 1954).
    Measured with bench/mirroring_eval.py (--strength 0.8 --only follow,converge,diverge;
    --calls 300 --seed 0..3 --only strong_ac) against the former ratio of the lag-2 and
    lag-1 autocorrelations with the correction always added (commit 4638023): convergence
    found 55-74 % -> 65-77.5 % of planted calls, strongly autocorrelated independent calls
    flagged 9.3 % -> 7.3 %. Half/half: ``first_half_distance`` / ``second_half_distance``
    between the speakers' means, and how far each speaker moved toward the other's first-half mean
    (``agent_moved``, ``customer_moved``; positive = toward). With sham calls the real
    value is also compared with sham pairs, the agent of one sham call with the customer
    of another, aligned by relative time (``sham_z``; p from a t prediction interval),
    and ``p`` becomes the larger of the two p-values (drift control: both must agree).
    Pairs that include this call's own speakers are not used: a speaker who moves a lot
    toward this partner also moves toward or away from any stranger, which would bury
    real convergence in the baseline's spread. Not computed for
    loudness (channel gains unknown: only movements are comparable).
    (A unit-level alternative, per-speaker IPU trends with an AR(1)-plus-noise error
    model, had more power on short calls but read slow near-unit-root wandering as a trend:
    it flagged 31.5 % of bench/mirroring_eval.py ``strong_ac`` calls, so it was dropped.)
Local proximity (Levitan & Hirschberg 2011)
    Per exchange, ``-|y - x|`` (adjacent) minus the mean of ``-|y - x_j|`` over the
    leader's non-adjacent turns 2..``proximity_offsets`` turns away on either side (close
    in time, so drift is shared with the adjacent turn). ``value`` is the mean of that
    difference (feature units; z units for loudness), ``p`` a t-test whose effective n is
    Bartlett-corrected for the larger of the differences' own autocorrelation and the
    product of the two speakers' turn-mean autocorrelations (chance co-movement of two
    autocorrelated speakers makes adjacent turns look close all call long). Measured with
    bench/pvalue_calibration.py on independent calls (raw p below 0.01 / 0.001; before:
    the differences' autocorrelation only): 30 espeak calls (the README's folders, 207
    tests) 3.9 % / 1.4 % -> 1.0 % / 0.5 %; 300 simulated 4.5-minute calls (2100 tests)
    0.43 % / 0.19 % -> 0.19 % / 0.10 %; planted relations found (bench/mirroring_eval.py
    --strength 1.0 --only follow,converge,diverge) 81.2 % -> 81.1 %, false alarms of
    --calls 200 --only independent,strong_ac,drift,walk unchanged.
Global proximity
    ``distance`` between the speakers' IPU means (semitones for pitch level, raw for the
    others; None for loudness, whose levels are not comparable across channels); with
    shams, ``sham_z = (distance - mean_sham) / sd_sham`` (negative = closer than chance).

Significance and correction
---------------------------
All p-values are two-sided. The family is every test that ran for this call (per feature:
the two directional synchronies, windowed synchrony, convergence and local proximity; up to
30: 24 for the voice features, loudness having no convergence, and 3 for each timing
feature). They are corrected together with
**weighted Benjamini-Hochberg** (``p_adj``; weights :data:`TEST_WEIGHTS` times
:data:`FEATURE_WEIGHTS`, rescaled to mean 1, Genovese et al. 2006). Why BH: on a call where
the speakers are independent every null is true, and then BH's false discovery rate is
exactly the probability of flagging anything, so the per-call false alarm rate stays at
``alpha``; when some features do mirror, BH keeps more power than Holm while bounding the
expected share of wrong claims among the flagged ones. Why weights: the exchange-level
directional tests and convergence answer the product's questions and get 1.5, windowed
synchrony 0.5 and local proximity 0.25 (they mostly restate the same evidence at a
coarser scale). ``mirrored`` is True when any of
the feature's tests is significant after correction *in the mirroring sense* (positive
synchrony, converging, positive local proximity); a significant negative synchrony
(disentrainment) or divergence is reported as such and does not make ``mirrored`` True.

What a call can show: ``r_needed`` (per directional synchrony) is the smallest positive
``r`` that makes the test significant on this call whatever the other tests say: a raw p
below ``alpha * w / m`` (``w`` its rescaled weight, ``m`` the family size:
:func:`bh_rank_one_threshold`) is flagged by weighted BH even at rank one, and that p is
reached at ``r_needed`` with the test's own degrees of freedom.
``MirroringResult.detectable_r`` is its median over the voice features' directional
tests. When that exceeds :data:`LARGE_EFFECT_R` (Cohen's "large" correlation, 0.5) the
call is too short for moderate following to be shown, and ``mirrored`` False there means
"not shown", not "absent" (the report then warns). Measured (``mirrorline analyze``,
``mirroring.detectable_r``): 0.73 on a 4.6-minute espeak call with 33 exchanges
(independent_0 of ``bench/make_calls.py bench/out/calls_copy --n 3 --seed 7
--duration-s 270 --encoding mulaw --strength 1.0``), 0.50 at 10 minutes (73 exchanges;
the same with ``bench/out/calls10_copy --n 2 --seed 11 --duration-s 600``), 0.26 on
bench/speed.py's 60-minute call.

``follower`` (per feature): the direction with the larger ``r``, when that direction is
significant (``p_adj < alpha``, ``r > 0``); None otherwise. Why the larger, even when both
are significant: a speaker who is copied picks up a weaker echo of their own
autocorrelation through the copy (the consistency confound: the copy is a second, noisy
measurement of the leader's past, which the own-past covariates, themselves noisy, cannot
fully absorb), so one-way copying often makes both directions significant, the copied
direction with the smaller ``r``. Measured (bench/mirroring_eval.py --strength 0.8 --only
follow, mean right-follower rate over the 10 rows, wrong follower 0-1 % either way): 82.2 %
when both significant also needed the two ``r`` to differ significantly (Fisher z, commit
05b6303), 85.0 % with the larger ``r``. Both directions' ``r`` and ``p`` stay in the
report, so mutual following is visible there.

Scores (``scores.tone`` / ``scores.tempo``, keys ``agent`` and ``customer``)
---------------------------------------------------------------------------
``scores.X.agent`` is how much the agent mirrors the customer in dimension X (tone: pitch
level, pitch variability, loudness; tempo: speaking and articulation rate), from the
``agent_follows_customer`` synchrony of each feature of the dimension that has a result:
each feature's test statistic is turned into a signed standard normal deviate
``z_f = sign(r) * Phi^-1(1 - p/2)`` (``z_f ~ N(0, 1)`` under chance pairing: that is
what the Bartlett-corrected test is calibrated to), the deviates are combined with
Stouffer's rule for correlated tests ``Z = sum z_f / sqrt(sum_fg R_fg)``, ``R_fg`` the
chance correlation of the two features' partial correlations, estimated as
``corr(u_f, u_g) * corr(v_f, v_g)`` of their residuals on shared exchanges (so speaking
and articulation rate, nearly one measurement, are not counted twice), and mapped
``score = 100 * Phi(Z)``. So 50 is
what chance pairing gives (median), 97.5 is ``Z = 1.96``, below 50 is disentrainment.
Measured on independent sim calls (--calls 200): median 51-54, 3.1-3.3 % above 97.5.
None when no feature of the dimension has a result.

Timeline
--------
Rolling Pearson correlation of the two speakers' window series over ``timeline_span``
consecutive windows (De Looze et al. 2014), per feature, and the mean over the tone and
the tempo features: a descriptive, time-resolved profile (no p-values) of when the two
moved together (r > 0) or apart.

Too little data never raises: a metric is None with a ``reason`` (fewer than
``min_exchanges`` exchanges, fewer than ``min_windows`` windows, a constant series, ...).

References: Levitan & Hirschberg 2011; Kousidis et al. 2008; De Looze et al. 2014; Borrie
et al. 2019; Bartlett 1935 / Dutilleul 1993 (effective sample size); Santer et al. 2000;
Benjamini & Hochberg 1995.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from dsp.errors import ParameterError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Voice features: per IPU (rates per turn), also on the window clock.
PROSODY_FEATURES = (
    "pitch_level",
    "pitch_variability",
    "loudness",
    "speaking_rate",
    "articulation_rate",
)
#: Turn-taking timing, one value per turn: mean pause inside it, response latency before it.
TIMING_FEATURES = ("pause", "latency")
FEATURES = PROSODY_FEATURES + TIMING_FEATURES
TONE_FEATURES = ("pitch_level", "pitch_variability", "loudness")
TEMPO_FEATURES = ("speaking_rate", "articulation_rate")
UNITS = {
    "pitch_level": "st",
    "pitch_variability": "st",
    "loudness": "z",
    "speaking_rate": "syll/s",
    "articulation_rate": "syll/s",
    "pause": "s",
    "latency": "s",
}
#: Other names accepted for the features (``dsp.windows`` column names).
FEATURE_ALIASES = {
    "pitch_median_st": "pitch_level",
    "pitch_sd_st": "pitch_variability",
    "loudness_db": "loudness",
    "speaking_rate_syl_per_s": "speaking_rate",
    "articulation_rate_syl_per_s": "articulation_rate",
}
#: Features whose values are z-scored per speaker (levels not comparable across channels).
ZSCORED = ("loudness",)
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


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SpeakerUnits:
    """One speaker's IPUs in time order, with per-IPU feature values.

    Parameters
    ----------
    start_s, end_s : (k,) float
        IPU bounds in seconds.
    turn_index : (k,) int
        The turn each IPU belongs to (any integer label, unique per turn of this speaker);
        -1 for backchannels, which are not part of a turn.
    features : mapping name -> (k,) float
        Per-IPU values (NaN where undefined), names from :data:`FEATURES` or aliases.
    turn_features : mapping name -> (T,) float, optional
        Per-turn values for the turns of this speaker, in the order of ``turn_labels``
        (e.g. speaking rate including within-turn pauses). When given for a feature, the
        turn value is used as both the turn-initial and the turn-final value.
    turn_labels : (T,) int, optional
        The ``turn_index`` label of each row of ``turn_features``.
    """

    start_s: FloatArray
    end_s: FloatArray
    turn_index: IntArray
    features: Mapping[str, FloatArray]
    turn_features: Mapping[str, FloatArray] = field(default_factory=dict)
    turn_labels: IntArray | None = None


@dataclass(frozen=True, eq=False)
class WindowSeries:
    """Both speakers' window values on one clock.

    Parameters
    ----------
    starts_s : (W,) float
        Window starts in seconds.
    window_s, hop_s : float
        Window length and step in seconds.
    values : mapping name -> (2, W) float
        Row 0 agent, row 1 customer; NaN where that speaker has too little speech.
    coverage : (2, W) float, optional
        Speech seconds per speaker and window (informative; NaN rules are the producer's).
    """

    starts_s: FloatArray
    window_s: float
    hop_s: float
    values: Mapping[str, FloatArray]
    coverage: FloatArray | None = None

    @classmethod
    def from_windows(cls, windows: Any) -> WindowSeries:
        """From a ``dsp.windows.Windows`` (or anything with ``starts_s``, ``window_s``,
        ``hop_s``, ``values`` and ``speech_s``); its column names are mapped through
        :data:`FEATURE_ALIASES`."""
        return cls(
            starts_s=np.asarray(windows.starts_s, dtype=np.float64),
            window_s=float(windows.window_s),
            hop_s=float(windows.hop_s),
            values=_canonical(windows.values),
            coverage=getattr(windows, "speech_s", None),
        )


@dataclass(frozen=True, eq=False)
class ShamCall:
    """Another call used as a source of sham partners (agent, customer, windows)."""

    agent: SpeakerUnits
    customer: SpeakerUnits
    windows: WindowSeries


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


def _clean(x: float | None) -> float | None:
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
        calibrated, see Directional synchrony above); None without a result."""
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


@dataclass(frozen=True)
class Convergence:
    """Trend of the speakers' distance over the call."""

    value: float | None
    r_time: float | None
    p: float | None
    p_adj: float | None
    direction: str | None
    n: int
    first_half_distance: float | None
    second_half_distance: float | None
    agent_moved: float | None
    customer_moved: float | None
    sham_z: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": "per_min",
            "r_time": self.r_time,
            "p": self.p,
            "p_adj": self.p_adj,
            "direction": self.direction,
            "n": self.n,
            "first_half_distance": self.first_half_distance,
            "second_half_distance": self.second_half_distance,
            "agent_moved": self.agent_moved,
            "customer_moved": self.customer_moved,
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


@dataclass(frozen=True)
class Scores:
    """0-100 mirroring scores per dimension and direction (50 = chance pairing)."""

    tone_agent: float | None
    tone_customer: float | None
    tempo_agent: float | None
    tempo_customer: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tone": {"agent": self.tone_agent, "customer": self.tone_customer},
            "tempo": {"agent": self.tempo_agent, "customer": self.tempo_customer},
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


# --------------------------------------------------------------------------------------
# Small statistics helpers (pure, NaN-safe)
# --------------------------------------------------------------------------------------


def _zscore(x: FloatArray) -> FloatArray:
    """z-score over the finite values; NaN stays NaN; constant -> zeros."""
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if ok.sum() < 2:
        return out
    sd = float(np.std(x[ok]))
    out[ok] = (x[ok] - np.mean(x[ok])) / sd if sd > 0 else 0.0
    return out


def _acf(x: FloatArray, max_lag: int) -> FloatArray:
    """Sample autocorrelation at lags 1..max_lag of a centred, gap-free series."""
    x = x - x.mean()
    den = float(np.dot(x, x))
    if den <= 0 or max_lag < 1:
        return np.zeros(max(max_lag, 0))
    return np.array([np.dot(x[:-k], x[k:]) / den for k in range(1, max_lag + 1)])


def _bartlett_n_eff(u: FloatArray, v: FloatArray) -> float:
    """Effective sample size for the correlation of two autocorrelated series.

    ``n / (1 + 2 sum_k rho_u(k) rho_v(k))`` over lags ``1..min(10, n // 5)``, clipped to
    ``[3, n]`` (Bartlett 1935; Pyper & Peterman 1998).
    """
    n = u.size
    max_lag = max(1, min(10, n // 5))
    s = 1.0 + 2.0 * float(np.dot(_acf(u, max_lag), _acf(v, max_lag)))
    return float(np.clip(n / max(s, 1e-9), 3.0, n))


def _t_sf(t: float, df: float) -> float:
    """Upper tail ``P(T > t)`` of Student's t with ``df`` degrees of freedom (scipy.special:
    importing scipy.stats costs 0.4-1 s of start-up)."""
    return float(special.stdtr(df, -t))


def _corr_t_p(r: float, df: float) -> float:
    """Two-sided p of a correlation ``r`` with ``df`` residual degrees of freedom."""
    df = max(df, 1.0)
    r = float(np.clip(r, -0.999999, 0.999999))
    t = r * math.sqrt(df / (1.0 - r * r))
    return float(2.0 * _t_sf(abs(t), df))


def _corr(a: FloatArray, b: FloatArray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def _residualize(y: FloatArray, covariates: FloatArray) -> FloatArray:
    """Residuals of ``y`` regressed on ``[1, covariates]`` ((n, q) array)."""
    x = np.column_stack([np.ones(y.size), covariates])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return np.asarray(y - x @ beta, dtype=np.float64)


def _signed_z(r: float | None, p: float | None) -> float | None:
    if r is None or p is None:
        return None
    return float(math.copysign(-float(special.ndtri(max(p, 1e-300) / 2.0)), r))


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


# --------------------------------------------------------------------------------------
# Exchanges
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Turns:
    """Turns of both speakers merged in time order, with per-feature values."""

    speaker: IntArray  # (T,) 0 agent, 1 customer
    start_s: FloatArray
    initial: dict[str, FloatArray]  # name -> (T,)
    final: dict[str, FloatArray]
    mean: dict[str, FloatArray]


def _canonical(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in values.items():
        name = FEATURE_ALIASES.get(key, key)
        if name in FEATURES:
            out[name] = val
    return out


#: Share of the edge IPU in a turn's initial / final value (the rest is the turn mean).
_EDGE_WEIGHT = 0.5


def _speaker_turns(units: SpeakerUnits, role: int, names: Sequence[str]) -> _Turns:
    start = np.asarray(units.start_s, dtype=np.float64).ravel()
    end = np.asarray(units.end_s, dtype=np.float64).ravel()
    turn = np.asarray(units.turn_index).ravel().astype(np.int64)
    k = start.size
    if end.size != k or turn.size != k:
        raise ParameterError(
            f"start_s, end_s and turn_index must have the same length, got {start.size}, "
            f"{end.size} and {turn.size}"
        )
    feats = _canonical(units.features)
    tfeats = _canonical(units.turn_features)
    for name, val in feats.items():
        if np.asarray(val).shape != (k,):
            raise ParameterError(
                f"feature {name!r} must have shape ({k},) like start_s, got {np.shape(val)}"
            )
    in_turn = (turn >= 0) & np.isfinite(start)
    order = np.lexsort((start[in_turn], turn[in_turn]))
    idx = np.flatnonzero(in_turn)[order]
    labels, first = np.unique(turn[idx], return_index=True)
    n_turns = labels.size
    bounds = np.append(first, idx.size)
    turn_start = np.array([start[idx[first]]]).reshape(-1) if n_turns else np.zeros(0)
    initial: dict[str, FloatArray] = {}
    final: dict[str, FloatArray] = {}
    mean: dict[str, FloatArray] = {}
    tlabels = None if units.turn_labels is None else np.asarray(units.turn_labels).ravel()
    for name in names:
        ini = np.full(n_turns, np.nan)
        fin = np.full(n_turns, np.nan)
        avg = np.full(n_turns, np.nan)
        if name in tfeats and tlabels is not None:
            tv = np.asarray(tfeats[name], dtype=np.float64).ravel()
            if tv.size != tlabels.size:
                raise ParameterError(
                    f"turn feature {name!r} has {tv.size} values for {tlabels.size} turn_labels"
                )
            lookup = dict(zip(tlabels.tolist(), tv.tolist(), strict=True))
            vals = np.array([lookup.get(int(lab), np.nan) for lab in labels], dtype=np.float64)
            ini, fin, avg = vals, vals.copy(), vals.copy()
        elif name in feats:
            v = np.asarray(feats[name], dtype=np.float64)[idx]
            ini, fin, avg = _turn_stats(v, bounds)
            ini = _EDGE_WEIGHT * ini + (1.0 - _EDGE_WEIGHT) * avg
            fin = _EDGE_WEIGHT * fin + (1.0 - _EDGE_WEIGHT) * avg
        initial[name], final[name], mean[name] = ini, fin, avg
    return _Turns(
        speaker=np.full(n_turns, role, dtype=np.int64),
        start_s=np.asarray(turn_start, dtype=np.float64),
        initial=initial,
        final=final,
        mean=mean,
    )


def _trailing_mean(values: FloatArray, ends: IntArray, span: int) -> FloatArray:
    """Mean of the last ``span`` finite ``values`` before each index in ``ends`` (NaN if none)."""
    pos = np.flatnonzero(np.isfinite(values))
    cs = np.concatenate([[0.0], np.cumsum(values[pos])])
    c = np.searchsorted(pos, ends)  # finite values before each end
    m = np.minimum(c, span)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cs[c] - cs[c - m]) / m
    return np.where(m > 0, out, np.nan)


def _turn_stats(v: FloatArray, bounds: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """First / last / mean finite value of each turn ``v[bounds[t]:bounds[t+1]]``
    (vectorised)."""
    n_turns = bounds.size - 1
    ini = np.full(n_turns, np.nan)
    fin = np.full(n_turns, np.nan)
    avg = np.full(n_turns, np.nan)
    if n_turns <= 0:
        return ini, fin, avg
    pos = np.flatnonzero(np.isfinite(v))
    turn_of = np.searchsorted(bounds, pos, side="right") - 1
    if pos.size:
        turns_hit, first_i = np.unique(turn_of, return_index=True)
        last_i = pos.size - 1 - np.unique(turn_of[::-1], return_index=True)[1]
        ini[turns_hit] = v[pos[first_i]]
        fin[turns_hit] = v[pos[last_i]]
        sums = np.bincount(turn_of, weights=v[pos], minlength=n_turns)
        counts = np.bincount(turn_of, minlength=n_turns)
        hit = counts > 0
        avg[hit] = sums[hit] / counts[hit]
    return ini, fin, avg


def _merge_turns(a: _Turns, b: _Turns, names: Sequence[str]) -> _Turns:
    start = np.concatenate([a.start_s, b.start_s])
    order = np.argsort(start, kind="stable")
    return _Turns(
        speaker=np.concatenate([a.speaker, b.speaker])[order],
        start_s=start[order],
        initial={n: np.concatenate([a.initial[n], b.initial[n]])[order] for n in names},
        final={n: np.concatenate([a.final[n], b.final[n]])[order] for n in names},
        mean={n: np.concatenate([a.mean[n], b.mean[n]])[order] for n in names},
    )


@dataclass(frozen=True, eq=False)
class _Exchanges:
    """Exchange rows for one direction (follower role fixed)."""

    follower_turn: IntArray  # index into merged turns of the follower's answering turn
    leader_turn: IntArray  # the leader's turn just before
    prev_turn: IntArray  # the follower's own previous turn (-1 if none)
    leader_rank: IntArray  # rank of the leader turn among the leader's turns


def _exchanges(turns: _Turns, follower: int) -> _Exchanges:
    spk = turns.speaker
    t_count = spk.size
    last_seen = np.full(2, -1, dtype=np.int64)
    rank = np.zeros(t_count, dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    fol, lead, prev = [], [], []
    for i in range(t_count):
        s = int(spk[i])
        rank[i] = counts[s]
        counts[s] += 1
        if i > 0 and s == follower and spk[i - 1] != follower:
            fol.append(i)
            lead.append(i - 1)
            prev.append(int(last_seen[follower]))
        last_seen[s] = i
    lead_arr = np.asarray(lead, dtype=np.int64)
    return _Exchanges(
        follower_turn=np.asarray(fol, dtype=np.int64),
        leader_turn=lead_arr,
        prev_turn=np.asarray(prev, dtype=np.int64),
        leader_rank=rank[lead_arr] if lead_arr.size else np.zeros(0, dtype=np.int64),
    )


def _take(values: FloatArray, index: IntArray) -> FloatArray:
    out = np.full(index.size, np.nan)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def _history_mean(turns: _Turns, name: str, span: int) -> FloatArray:
    """Per turn, the mean of its speaker's last ``span`` finite turn means (this turn
    included)."""
    out = np.full(turns.speaker.size, np.nan)
    for s in (0, 1):
        idx = np.flatnonzero(turns.speaker == s)
        out[idx] = _trailing_mean(turns.mean[name][idx], np.arange(1, idx.size + 1), span)
    return out


def _impute(x: FloatArray) -> FloatArray:
    """NaN replaced by the mean of the finite values (0 when none)."""
    ok = np.isfinite(x)
    fill = float(x[ok].mean()) if ok.any() else 0.0
    return np.where(ok, x, fill)


#: Turns in the follower's slow-level covariate of the directional test.
_SYNC_HISTORY_SPAN = 4


def _directional_sync(
    turns: _Turns,
    ex: _Exchanges,
    name: str,
    history: FloatArray,
    *,
    min_exchanges: int,
    residuals: dict[str, tuple[IntArray, FloatArray, FloatArray]] | None = None,
) -> DirectionalSync:
    """Partial correlation of follower-initial with leader-final given the follower's past.

    Covariates: the follower's previous turn-final value (short memory) and the mean of
    the follower's last :data:`_SYNC_HISTORY_SPAN` turn means (slow level). Measured and
    left out: a time trend and Bartlett or AR(1) effective sample sizes (cost power, no
    false-alarm gain); the leader's previous turn-final value, which in one-off runs of
    bench/mirroring_eval.py lowered false alarms only on very persistent speakers
    (``strong_ac``) and cost power on every feature.
    """
    y = _take(turns.initial[name], ex.follower_turn)
    x = _take(turns.final[name], ex.leader_turn)
    z1 = _take(turns.final[name], ex.prev_turn)
    ok = np.isfinite(y) & np.isfinite(x) & np.isfinite(z1)
    n = int(ok.sum())

    def none(reason: str) -> DirectionalSync:
        return DirectionalSync(None, None, None, n, None, reason)

    if n < min_exchanges:
        return none(f"{n} usable exchanges (fewer than {min_exchanges})")
    yy, xx = y[ok], x[ok]
    if _is_constant(yy) or _is_constant(xx):
        return none("constant values")
    cols = [z1[ok], _impute(_take(history, ex.prev_turn)[ok])]
    cov = np.column_stack(cols)
    # Keep only linearly independent covariates (1-IPU turns make mean == final).
    keep: list[int] = []
    for j in range(cov.shape[1]):
        trial = np.column_stack([np.ones(n), cov[:, keep + [j]]])
        if np.linalg.matrix_rank(trial) == trial.shape[1]:
            keep.append(j)
    cov = cov[:, keep]
    u = _residualize(yy, cov)
    v = _residualize(xx, cov)
    r = _corr(u, v)
    if not math.isfinite(r):
        return none("no variation left after controlling for the speakers' past")
    df = n - 2 - cov.shape[1]
    if df < 3:
        return none(
            f"{n} usable exchanges leave {df} degrees of freedom after the "
            f"{cov.shape[1]} own-past covariates (fewer than 3)"
        )
    p = _corr_t_p(r, df)
    if residuals is not None:
        residuals[name] = (ex.follower_turn[ok], u, v)
    return DirectionalSync(r, p, None, n, _signed_z(r, p), None, df=df)


def _speaker_turn_means(turns: _Turns, name: str, speaker: int) -> FloatArray:
    """One speaker's per-turn means of ``name`` in time order, gaps dropped."""
    v = turns.mean[name][turns.speaker == speaker]
    return v[np.isfinite(v)]


def _local_proximity(
    turns: _Turns,
    exs: Sequence[_Exchanges],
    name: str,
    *,
    offsets: int,
    min_exchanges: int,
    zscored: bool,
) -> tuple[float | None, float | None, int, str | None]:
    initial = turns.initial[name]
    final = turns.final[name]
    if zscored:
        initial = initial.copy()
        final = final.copy()
        for s in (0, 1):
            m = turns.speaker == s
            both = _zscore(np.concatenate([initial[m], final[m]]))
            initial[m], final[m] = both[: m.sum()], both[m.sum() :]
    diffs: list[FloatArray] = []
    times: list[FloatArray] = []
    for ex in exs:
        if ex.follower_turn.size == 0:
            continue
        leader = int(turns.speaker[ex.leader_turn[0]])
        leader_turns = np.flatnonzero(turns.speaker == leader)
        leader_final = final[leader_turns]
        y = initial[ex.follower_turn]
        x = final[ex.leader_turn]
        adj = -np.abs(y - x)
        js = np.array([o for o in range(-offsets, offsets + 1) if abs(o) >= 2])
        cand = ex.leader_rank[:, None] + js[None, :]
        valid = (cand >= 0) & (cand < leader_turns.size)
        other = np.where(valid, leader_final[np.clip(cand, 0, leader_turns.size - 1)], np.nan)
        sims = -np.abs(y[:, None] - other)
        with np.errstate(all="ignore"):
            cnt = np.isfinite(sims).sum(axis=1)
            non = np.where(cnt > 0, np.nansum(sims, axis=1) / np.maximum(cnt, 1), np.nan)
        diffs.append(adj - non)
        times.append(turns.start_s[ex.follower_turn])
    if not diffs:
        return None, None, 0, "no exchanges"
    d = np.concatenate(diffs)
    t = np.concatenate(times)
    ok = np.isfinite(d)
    n = int(ok.sum())
    if n < min_exchanges:
        return None, None, n, f"{n} usable exchanges (fewer than {min_exchanges})"
    d = d[ok][np.argsort(t[ok])]
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd <= 0:
        return None, None, n, "constant values"
    max_lag = max(1, min(10, n // 5))
    rho = _acf(d, max_lag)
    inflation = 1.0 + 2.0 * float(np.sum(rho))
    # Two independent but autocorrelated speakers drift together by chance for a while; that
    # shifts every difference of the call the same way, which their own autocorrelation
    # (taken about their mean) does not show. Bartlett's variance of a cross-product of two
    # autocorrelated series counts it: the larger of the two inflations is used.
    rho_agent, rho_customer = (_acf(_speaker_turn_means(turns, name, s), max_lag) for s in (0, 1))
    inflation = max(inflation, 1.0 + 2.0 * float(np.sum(rho_agent * rho_customer)))
    n_eff = float(np.clip(n / max(inflation, 1e-9), 3.0, n))
    tstat = mean / (sd / math.sqrt(n_eff))
    p = float(2.0 * _t_sf(abs(tstat), n_eff - 1.0))
    return mean, p, n, None


# --------------------------------------------------------------------------------------
# Window-level statistics
# --------------------------------------------------------------------------------------


def _is_constant(x: FloatArray) -> bool:
    """True when the finite values of ``x`` do not vary (up to rounding)."""
    f = x[np.isfinite(x)]
    return f.size == 0 or float(np.ptp(f)) <= 1e-9 * max(1.0, float(np.max(np.abs(f))))


def _prewhiten(x: FloatArray, t: FloatArray) -> FloatArray:
    """Linear detrend then AR(1) residuals; NaN where undefined."""
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if ok.sum() < 4:
        return out
    coef = np.polyfit(t[ok], x[ok], 1)
    d = np.where(ok, x - np.polyval(coef, t), np.nan)
    prev, cur = d[:-1], d[1:]
    pair = np.isfinite(prev) & np.isfinite(cur)
    den = float(np.dot(prev[pair], prev[pair]))
    phi = float(np.clip(np.dot(prev[pair], cur[pair]) / den, -0.95, 0.95)) if den > 0 else 0.0
    out[1:] = cur - phi * prev
    return out


def _lagged_r(a: FloatArray, b: FloatArray, lag: int) -> tuple[float, int, FloatArray, FloatArray]:
    """r of a[t] with b[t + lag] over pairs where both are finite."""
    w = a.size
    if lag >= 0:
        aa, bb = a[: w - lag], b[lag:]
    else:
        aa, bb = a[-lag:], b[: w + lag]
    ok = np.isfinite(aa) & np.isfinite(bb)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), n, aa[ok], bb[ok]
    return _corr(aa[ok], bb[ok]), n, aa[ok], bb[ok]


def _circular_max_r(a: FloatArray, b: FloatArray, max_lag: int) -> FloatArray:
    """Max-over-lags |r| of ``a`` against every circular shift of ``b`` (shifts far from 0)."""
    w = a.size
    fa = np.isfinite(a)
    fb = np.isfinite(b)
    a0 = np.where(fa, a, 0.0)
    b0 = np.where(fb, b, 0.0)
    idx = (np.arange(w)[None, :] + np.arange(w)[:, None]) % w  # row m: b rolled by -m
    bm = b0[idx]
    mm = fb[idx] & fa[None, :]
    n = mm.sum(axis=1).astype(np.float64)
    with np.errstate(all="ignore"):
        sa = (a0[None, :] * mm).sum(axis=1)
        sb = (bm * mm).sum(axis=1)
        saa = (a0[None, :] ** 2 * mm).sum(axis=1)
        sbb = (bm**2 * mm).sum(axis=1)
        sab = (a0[None, :] * bm * mm).sum(axis=1)
        cov = sab - sa * sb / n
        var = (saa - sa**2 / n) * (sbb - sb**2 / n)
        r = np.where((n >= 3) & (var > 0), cov / np.sqrt(np.maximum(var, 1e-300)), np.nan)
    shifts = np.arange(2 * max_lag + 1, w - 2 * max_lag)
    if shifts.size == 0:
        return np.zeros(0)
    lags = np.arange(-max_lag, max_lag + 1)
    mat = np.abs(r[(shifts[:, None] + lags[None, :]) % w])
    with np.errstate(all="ignore"):
        return np.asarray(np.nanmax(np.where(np.isfinite(mat), mat, -1.0), axis=1))


def _windowed_sync(
    a: FloatArray, b: FloatArray, t: FloatArray, hop_s: float, *, max_lag: int, min_windows: int
) -> WindowedSync:
    both = np.isfinite(a) & np.isfinite(b)
    n = int(both.sum())
    if n < min_windows:
        return WindowedSync(
            None, None, None, None, n, None, None,
            f"{n} windows with both speakers (fewer than {min_windows})",
        )  # fmt: skip
    if _is_constant(a) or _is_constant(b):
        return WindowedSync(None, None, None, None, n, None, None, "constant series")
    ea = _prewhiten(a, t)
    eb = _prewhiten(b, t)
    best: tuple[float, int, int, FloatArray, FloatArray] | None = None
    for lag in range(-max_lag, max_lag + 1):
        r, m, ua, ub = _lagged_r(ea, eb, lag)
        if m >= min_windows - 1 and math.isfinite(r) and (best is None or abs(r) > abs(best[0])):
            best = (r, lag, m, ua, ub)
    if best is None:
        return WindowedSync(None, None, None, None, n, None, None, "constant series")
    r, lag, m, ua, ub = best
    n_eff = _bartlett_n_eff(ua, ub)
    p_lag = _corr_t_p(r, n_eff - 2.0)
    n_lags = 2 * max_lag + 1
    p = float(-np.expm1(n_lags * np.log1p(-min(p_lag, 1.0 - 1e-16))))
    chance = _circular_max_r(ea, eb, max_lag)
    chance = chance[np.isfinite(chance) & (chance >= 0)]
    chance_r = float(chance.mean()) if chance.size else None
    p_shift = float((1 + np.sum(chance >= abs(r))) / (chance.size + 1)) if chance.size else None
    return WindowedSync(r, lag * hop_s, p, None, n, chance_r, p_shift, None)


def _block_corr(phi: float, k: float) -> float:
    """Correlation of adjacent means of ``k`` consecutive values of an AR(1) with ``phi``."""
    kk = max(1, int(round(k)))
    i = np.arange(kk)
    lag = i[None, :] - i[:, None]
    within = float(np.sum(phi ** np.abs(lag)))
    across = float(np.sum(phi ** np.abs(lag + kk)))
    return across / within if within > 0 else 0.0


#: Grids of the AR(1) coefficient and of the AR(1) share of the variance searched by
#: :func:`_whittle_ar1_noise` (finer near 1, where window-level persistence changes fast).
_WHITTLE_PHI = np.concatenate([np.linspace(0.0, 0.9, 46), np.linspace(0.905, 0.995, 19)])
_WHITTLE_SIGNAL_SHARE = np.linspace(0.05, 1.0, 20)


def _whittle_ar1_noise(v: FloatArray) -> float:
    """AR(1) coefficient of an AR(1)-plus-white-noise series, by Whittle's likelihood.

    The periodogram is fitted with the model's spectrum ``share * (1 - phi^2) /
    |1 - phi e^{-iw}|^2 + (1 - share)`` (scale profiled out) over the grids above. Uses
    every lag at once, unlike the ratio of the lag-2 and lag-1 sample autocorrelations it
    replaced, whose noise on the ~100 values of a short call now and then read moderate
    persistence as slow wandering and buried a real trend (see Convergence above).
    """
    n = v.size
    periodogram = np.abs(np.fft.rfft(v - v.mean())[1 : (n + 1) // 2]) ** 2 / n
    cos_w = np.cos(2.0 * np.pi * np.arange(1, periodogram.size + 1) / n)
    phi = _WHITTLE_PHI[:, None, None]
    share = _WHITTLE_SIGNAL_SHARE[None, :, None]
    spectrum = share * (1.0 - phi**2) / (1.0 - 2.0 * phi * cos_w + phi**2) + (1.0 - share)
    scale = np.mean(periodogram / spectrum, axis=-1)
    log_lik = -periodogram.size * np.log(scale) - np.sum(np.log(spectrum), axis=-1)
    best, _ = np.unravel_index(int(np.argmax(log_lik)), log_lik.shape)
    return float(_WHITTLE_PHI[best])


def _ipu_persistence(start_s: FloatArray, values: FloatArray) -> tuple[float, float] | None:
    """IPU-level AR(1) coefficient of a speaker's values, robust to measurement noise.

    The series (finite values in time order, linearly detrended) is read as AR(1) plus
    white measurement noise, whose ``phi`` is fitted by :func:`_whittle_ar1_noise` and
    bias-corrected by ``(1 + 3 phi) / n``. Returns ``(phi, rate)`` with ``rate`` the
    speaker's finite values per second, or None with too few values.
    """
    ok = np.isfinite(values) & np.isfinite(start_s)
    if ok.sum() < 20:
        return None
    order = np.argsort(start_s[ok])
    v = values[ok][order]
    t = start_s[ok][order]
    idx = np.arange(v.size, dtype=np.float64)
    scale = float(np.max(np.abs(v)))
    v = v - np.polyval(np.polyfit(idx, v, 1), idx)
    # Values constant around their trend (synthetic speech, a rate that never changes) do
    # not wander at all; their rounding residue must not be fitted as persistence.
    flat = float(np.std(v)) <= 1e-9 * max(scale, 1e-12)
    phi = 0.0 if flat else _whittle_ar1_noise(v)
    # A short detrended series reads persistence low (Marriott & Pope 1954): without this,
    # slowly wandering speakers (bench/mirroring_eval.py strong_ac) were called converging.
    phi = min(phi + (1.0 + 3.0 * phi) / v.size, 0.995)
    span = float(t[-1] - t[0])
    return phi, (v.size / span if span > 0 else 0.0)


def _gls_trend(
    y: FloatArray, tc: FloatArray, rho_floor: float | None = None
) -> tuple[float, float, float, float]:
    """Linear trend of ``y`` on centred time ``tc`` with AR(1) errors (Prais-Winsten).

    The AR(1) coefficient is the lag-1 autocorrelation of the OLS residuals raised to
    ``rho_floor`` (the persistence implied by the speakers' IPU-level series, which a
    short window series underestimates) or, without a floor, bias-corrected
    (``rho + (1 + 3 rho) / n``, Marriott & Pope 1954); then clipped to ``[0, 0.98]``.
    With a floor the correction is not added on top: the floor already carries the
    persistence the few windows under-read; adding both cost 1-4 points of convergence
    power per row and saved only 0.5 point of false alarms on very persistent speakers
    (bench/mirroring_eval.py: strong_ac 6.8 % -> 7.3 % over seeds 0-3).

    Returns
    -------
    level, slope, t, df : float
        Fitted value at the mean time, slope per unit of ``tc``, the slope's t statistic
        and its degrees of freedom.
    """
    n = y.size
    x = np.column_stack([np.ones(n), tc])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    rho = max(float(_acf(resid, 1)[0]), 0.0)
    rho = rho + (1.0 + 3.0 * rho) / n if rho_floor is None else max(rho, rho_floor)
    rho = float(np.clip(rho, 0.0, 0.98))
    w = math.sqrt(1.0 - rho * rho)
    ys = np.concatenate([[w * y[0]], y[1:] - rho * y[:-1]])
    xs = np.vstack([w * x[:1], x[1:] - rho * x[:-1]])
    b, *_ = np.linalg.lstsq(xs, ys, rcond=None)
    e = ys - xs @ b
    df = max(n - 3.0, 1.0)
    s2 = float(np.dot(e, e)) / df
    xtx = xs.T @ xs
    det = float(np.linalg.det(xtx))
    if det <= 0 or s2 <= 0:
        return float(b[0]), float(b[1]), 0.0, df
    se = math.sqrt(s2 * float(xtx[0, 0]) / det)
    return float(b[0]), float(b[1]), float(b[1]) / se, df


def _convergence_t(
    diff: FloatArray, tc: FloatArray, rho_floor: float | None = None
) -> tuple[float, float, float]:
    """(rate per unit time, positive = closer; t statistic, sign = closer; df)."""
    level, slope, t, df = _gls_trend(diff, tc, rho_floor)
    f0, f1 = level + slope * tc[0], level + slope * tc[-1]
    if f0 * f1 > 0:
        sign = 1.0 if level > 0 else -1.0
        return (abs(f0) - abs(f1)) / float(tc[-1] - tc[0]), -sign * t, df
    _, d_slope, d_t, df = _gls_trend(np.abs(diff), tc, rho_floor)
    return -d_slope, -d_t, df


def _convergence_stat(
    a: FloatArray,
    b: FloatArray,
    t_min: FloatArray,
    stride: int = 1,
    rho_floor: float | None = None,
) -> tuple[float, float, float] | None:
    """Convergence rate (per minute, positive = closer), its p, and r of -|a-b| with time.

    The signed difference ``a - b`` is fitted with a linear trend with AR(1) errors; when
    the fitted line does not cross zero inside the call, the rate is the change of the
    fitted distance and the statistic that of the slope (no folding noise from
    ``|a - b|``); when it crosses (one speaker overtakes the other) the trend of ``|a - b|``
    itself is tested instead. Only every ``stride``-th window is used (``window_s /
    hop_s``: windows that do not overlap, which still cover all the speech), so the AR(1)
    model is not asked to describe the overlap.
    """
    a, b, t_min = a[::stride], b[::stride], t_min[::stride]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 5:
        return None
    tt = t_min[ok]
    tc = tt - tt.mean()
    diff = a[ok] - b[ok]
    if np.ptp(tc) <= 0 or np.ptp(diff) <= 0:
        return None
    value, t, df = _convergence_t(diff, tc, rho_floor)
    p = float(2.0 * _t_sf(abs(t), df))
    return value, p, -_corr(tc, np.abs(diff))


def _unit_series(units: SpeakerUnits, name: str) -> tuple[FloatArray, FloatArray | None]:
    """A speaker's per-IPU values of ``name`` with start times, or its per-turn values
    (at each turn's first IPU start) when the feature is given per turn only."""
    start = np.asarray(units.start_s, dtype=np.float64).ravel()
    tf = _canonical(units.turn_features).get(name)
    if tf is not None and units.turn_labels is not None:
        labels = np.asarray(units.turn_labels).ravel()
        turn = np.asarray(units.turn_index).ravel()
        times = np.array(
            [start[turn == lab].min() if np.any(turn == lab) else np.nan for lab in labels],
            dtype=np.float64,
        )
        return times, np.asarray(tf, dtype=np.float64).ravel()
    vals = _canonical(units.features).get(name)
    return start, None if vals is None else np.asarray(vals, dtype=np.float64)


#: Sham pairs per sham call (agent of call k with customers of calls k+1..k+this).
_MAX_SHAM_OFFSETS = 4


def _window_rho(
    series: Sequence[tuple[FloatArray, FloatArray | None]],
    rows: Sequence[FloatArray],
    step_s: float,
) -> float | None:
    """Lag-1 autocorrelation of ``a - c`` between windows ``step_s`` apart implied by the
    speakers' IPU-level persistence (``series``: each speaker's :func:`_unit_series`;
    ``rows``: their window rows): the larger of the two speakers', so a steadier partner
    does not dilute one speaker's slow wandering into a trend. None when neither speaker
    has enough values to estimate it."""
    top = None
    for (times, vals), row in zip(series, rows, strict=True):
        if vals is None:
            continue
        est = _ipu_persistence(times, vals)
        finite = row[np.isfinite(row)]
        if est is None or finite.size < 2:
            continue
        phi, rate = est
        implied = _block_corr(phi, rate * step_s)
        top = implied if top is None else max(top, implied)
    return top


def _align(row: FloatArray, w: int) -> FloatArray:
    """A sham's window row resampled by relative time onto ``w`` windows (nearest)."""
    if row.size == 0:
        return np.full(w, np.nan)
    pos = np.rint(np.linspace(0.0, row.size - 1.0, w)).astype(np.int64)
    return np.asarray(row[pos], dtype=np.float64)


def _convergence(
    a: FloatArray,
    b: FloatArray,
    t_s: FloatArray,
    *,
    min_windows: int,
    sham_pairs: Sequence[tuple[FloatArray, FloatArray]],
    stride: int = 1,
    rho_floor: float | None = None,
) -> Convergence:
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())

    def none(reason: str) -> Convergence:
        return Convergence(
            None, None, None, None, None, n, None, None, None, None, None, reason
        )  # fmt: skip

    if n < min_windows:
        return none(f"{n} windows with both speakers (fewer than {min_windows})")
    t_min = t_s / 60.0
    aa, bb, tt = a[ok], b[ok], t_min[ok]
    stat = _convergence_stat(a, b, t_min, stride, rho_floor)
    if stat is None:
        return none("constant distance")
    value, p, r_time = stat
    half = tt <= (tt[0] + tt[-1]) / 2.0
    ma1, mb1 = float(aa[half].mean()), float(bb[half].mean())
    ma2, mb2 = float(aa[~half].mean()), float(bb[~half].mean())
    sham_z = None
    sham_vals = []
    for sa, sb in sham_pairs:
        st = _convergence_stat(sa, sb, t_min, stride)
        if st is not None and math.isfinite(st[0]):
            sham_vals.append(st[0])
    if len(sham_vals) >= 3:
        sv = np.asarray(sham_vals)
        sd = float(sv.std(ddof=1))
        if sd > 0:
            sham_z = (value - float(sv.mean())) / sd
            m = sv.size
            p_sham = float(2.0 * _t_sf(abs(sham_z) / math.sqrt(1.0 + 1.0 / m), m - 1))
            p = max(p, p_sham)
    return Convergence(
        value=value,
        r_time=r_time,
        p=p,
        p_adj=None,
        direction=None,
        n=n,
        first_half_distance=abs(ma1 - mb1),
        second_half_distance=abs(ma2 - mb2),
        agent_moved=float(np.sign(mb1 - ma1) * (ma2 - ma1)),
        customer_moved=float(np.sign(ma1 - mb1) * (mb2 - mb1)),
        sham_z=_clean(sham_z),
        reason=None,
    )


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
    cu = _corr(a[1][ia], b[1][ib])
    cv = _corr(a[2][ia], b[2][ib])
    if not (math.isfinite(cu) and math.isfinite(cv)):
        return 0.0
    return float(np.clip(cu * cv, -1.0, 1.0))


def _score(
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
        Frozen; see the module docstring for each statistic. ``to_dict()`` gives
        ``features[name] = {proximity, convergence, synchrony, follower, mirrored, reason}``,
        ``timeline`` and ``scores``.

    Raises
    ------
    ParameterError
        Out-of-range parameters or inconsistent array shapes (never for missing data).
    """
    del rng
    if not 0.0 < alpha < 1.0:
        raise ParameterError(f"alpha must be in (0, 1), got {alpha}")
    if min_exchanges < 6:
        raise ParameterError(f"min_exchanges must be >= 6, got {min_exchanges}")
    if min_windows < 6:
        raise ParameterError(f"min_windows must be >= 6, got {min_windows}")
    if max_lag_windows < 0:
        raise ParameterError(f"max_lag_windows must be >= 0, got {max_lag_windows}")
    if proximity_offsets < 2:
        raise ParameterError(f"proximity_offsets must be >= 2, got {proximity_offsets}")
    if timeline_span < 3:
        raise ParameterError(f"timeline_span must be >= 3, got {timeline_span}")

    names = FEATURES
    turns = _merge_turns(_speaker_turns(agent, 0, names), _speaker_turns(customer, 1, names), names)
    ex_agent = _exchanges(turns, follower=0)  # agent answers the customer
    ex_customer = _exchanges(turns, follower=1)
    n_exchanges = int(ex_agent.follower_turn.size + ex_customer.follower_turn.size)

    starts = np.asarray(windows.starts_s, dtype=np.float64).ravel()
    w = starts.size
    wvals = _canonical(windows.values)
    centres = starts + float(windows.window_s) / 2.0
    for name, val in wvals.items():
        if np.shape(val) != (2, w):
            raise ParameterError(
                f"window values {name!r} must have shape (2, {w}), got {np.shape(val)}"
            )

    warnings: list[str] = []
    if turns.speaker.size == 0:
        warnings.append("no turns: no exchange-level statistics")

    # Per-feature raw statistics.
    sync_a: dict[str, DirectionalSync] = {}
    sync_c: dict[str, DirectionalSync] = {}
    wsync: dict[str, WindowedSync] = {}
    conv: dict[str, Convergence] = {}
    prox_local: dict[str, tuple[float | None, float | None, int, str | None]] = {}
    glob: dict[str, tuple[float | None, float | None, str | None]] = {}
    rows: dict[str, tuple[FloatArray, FloatArray]] = {}
    res_a: dict[str, tuple[IntArray, FloatArray, FloatArray]] = {}
    res_c: dict[str, tuple[IntArray, FloatArray, FloatArray]] = {}

    for name in names:
        zs = name in ZSCORED
        hist = _history_mean(turns, name, _SYNC_HISTORY_SPAN)
        sync_a[name] = _directional_sync(
            turns, ex_agent, name, hist, min_exchanges=min_exchanges, residuals=res_a
        )
        sync_c[name] = _directional_sync(
            turns, ex_customer, name, hist, min_exchanges=min_exchanges, residuals=res_c
        )
        prox_local[name] = _local_proximity(
            turns,
            (ex_agent, ex_customer),
            name,
            offsets=proximity_offsets,
            min_exchanges=min_exchanges,
            zscored=zs,
        )
        if name in wvals:
            v = np.asarray(wvals[name], dtype=np.float64)
            a_row, c_row = v[0].copy(), v[1].copy()
        else:
            a_row, c_row = np.full(w, np.nan), np.full(w, np.nan)
        if zs:
            a_row, c_row = _zscore(a_row), _zscore(c_row)
        rows[name] = (a_row, c_row)
        if name in wvals:
            wsync[name] = _windowed_sync(
                a_row,
                c_row,
                centres,
                float(windows.hop_s),
                max_lag=max_lag_windows,
                min_windows=min_windows,
            )
        else:
            wsync[name] = WindowedSync(
                None, None, None, None, 0, None, None, _no_windows(name)
            )  # fmt: skip
        sham_pairs: list[tuple[FloatArray, FloatArray]] = []
        sham_glob: list[float] = []
        rows_a: list[FloatArray] = []
        rows_c: list[FloatArray] = []
        for sham in shams:
            sv = _canonical(sham.windows.values)
            if name in sv and not zs:
                srow = np.asarray(sv[name], dtype=np.float64)
                rows_a.append(_align(srow[0], w))
                rows_c.append(_align(srow[1], w))
        # Sham pairs: an agent and a customer from two *other* calls (Borrie et al. 2019):
        # how much unrelated speakers converge by chance (drift, wandering), without this
        # call's own movements in the baseline.
        m = len(rows_a)
        for k in range(m):
            for j in range(1, min(m, _MAX_SHAM_OFFSETS + 1)):
                sham_pairs.append((rows_a[k], rows_c[(k + j) % m]))
        # each speaker's own IPU (or turn) series and mean: persistence, global distance
        own = [_unit_series(units, name) for units in (agent, customer)]
        own_mean = [_series_mean(vals) for _, vals in own]
        for sham in shams if not zs else ():
            sham_mean = [
                _series_mean(_unit_series(u, name)[1]) for u in (sham.agent, sham.customer)
            ]
            for m1, m2 in ((own_mean[0], sham_mean[1]), (sham_mean[0], own_mean[1])):
                if m1 is not None and m2 is not None:
                    sham_glob.append(abs(m1 - m2))
        if zs:
            conv[name] = Convergence(
                None, None, None, None, None, 0, None, None, None, None, None,
                "levels not comparable across channels (unknown gains): only movements "
                "(synchrony) are measured",
            )  # fmt: skip
            glob[name] = (None, None, "levels not comparable across channels (unknown gains)")
        else:
            if name in wvals:
                hop = float(windows.hop_s)
                stride = max(1, int(round(float(windows.window_s) / hop))) if hop > 0 else 1
                conv[name] = _convergence(
                    a_row,
                    c_row,
                    centres,
                    min_windows=min_windows,
                    sham_pairs=sham_pairs,
                    stride=stride,
                    rho_floor=_window_rho(own, (a_row, c_row), float(windows.window_s) * stride),
                )
            else:
                conv[name] = Convergence(
                    None, None, None, None, None, 0, None, None, None, None, None,
                    _no_windows(name),
                )  # fmt: skip
            ma, mc = own_mean
            if ma is None or mc is None:
                glob[name] = (None, None, "a speaker has no value")
            else:
                dist = abs(ma - mc)
                gz = None
                if len(sham_glob) >= 3 and float(np.std(sham_glob, ddof=1)) > 0:
                    gz = (dist - float(np.mean(sham_glob))) / float(np.std(sham_glob, ddof=1))
                glob[name] = (dist, gz, None)

    # Multiple-testing correction across the call's family.
    keys: list[tuple[str, str]] = []
    pvals: list[float] = []
    for name in names:
        for kind, p in (
            ("agent", sync_a[name].p),
            ("customer", sync_c[name].p),
            ("windowed", wsync[name].p),
            ("convergence", conv[name].p),
            ("proximity", prox_local[name][1]),
        ):
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

    features: list[FeatureMirroring] = []
    for name in names:
        sa = _with_padj(sync_a[name], padj.get((name, "agent")), p_flagged.get((name, "agent")))
        sc = _with_padj(
            sync_c[name], padj.get((name, "customer")), p_flagged.get((name, "customer"))
        )
        ws = wsync[name]
        ws = WindowedSync(
            _clean(ws.r), ws.lag_s, _clean(ws.p), padj.get((name, "windowed")), ws.n,
            _clean(ws.chance_r), ws.p_shift, ws.reason,
        )  # fmt: skip
        cv = conv[name]
        cp = padj.get((name, "convergence"))
        direction = None
        if cv.value is not None and cp is not None:
            direction = "none"
            if cp < alpha:
                direction = "converging" if cv.value > 0 else "diverging"
        cv = Convergence(
            _clean(cv.value), _clean(cv.r_time), _clean(cv.p), cp, direction, cv.n,
            _clean(cv.first_half_distance), _clean(cv.second_half_distance),
            _clean(cv.agent_moved), _clean(cv.customer_moved), cv.sham_z, cv.reason,
        )  # fmt: skip
        lv, lp, ln, lr = prox_local[name]
        gd, gz, gr = glob[name]
        prox = Proximity(
            _clean(lv), _clean(lp), padj.get((name, "proximity")), ln, lr,
            _clean(gd), _clean(gz), gr,
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
        features.append(
            FeatureMirroring(
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
        )

    timeline = _timeline(rows, starts, float(windows.window_s), timeline_span)
    by_name = {f.name: f for f in features}
    scores = Scores(
        tone_agent=_score(
            [by_name[n].agent_follows_customer.z for n in TONE_FEATURES],
            [res_a.get(n) for n in TONE_FEATURES],
        ),
        tone_customer=_score(
            [by_name[n].customer_follows_agent.z for n in TONE_FEATURES],
            [res_c.get(n) for n in TONE_FEATURES],
        ),
        tempo_agent=_score(
            [by_name[n].agent_follows_customer.z for n in TEMPO_FEATURES],
            [res_a.get(n) for n in TEMPO_FEATURES],
        ),
        tempo_customer=_score(
            [by_name[n].customer_follows_agent.z for n in TEMPO_FEATURES],
            [res_c.get(n) for n in TEMPO_FEATURES],
        ),
    )
    return MirroringResult(
        features=tuple(features),
        timeline=timeline,
        scores=scores,
        n_exchanges=n_exchanges,
        n_windows=w,
        n_shams=len(shams),
        alpha=float(alpha),
        correction=CORRECTION,
        warnings=tuple(warnings),
    )


def _no_windows(name: str) -> str:
    if name in TIMING_FEATURES:
        return "measured per turn only (no window series): exchange-level statistics only"
    return "no window values"


def _series_mean(values: FloatArray | None) -> float | None:
    """Mean of a speaker's finite unit values (None without any)."""
    finite = None if values is None else values[np.isfinite(values)]
    return float(finite.mean()) if finite is not None and finite.size else None


def _with_padj(s: DirectionalSync, p_adj: float | None, p_flagged: float | None) -> DirectionalSync:
    """``s`` after correction: its ``p_adj``, and ``r_needed`` from ``p_flagged``, the raw
    p below which the correction flags it whatever the other tests say."""
    r_needed = None
    if p_flagged is not None and s.df is not None:
        r_needed = _r_for_p(p_flagged, s.df)
    return replace(s, r=_clean(s.r), p=_clean(s.p), p_adj=p_adj, r_needed=r_needed)


def _r_for_p(p: float, df: float) -> float:
    """The ``|r|`` whose two-sided t-test p-value with ``df`` degrees of freedom is ``p``
    (the inverse of :func:`_corr_t_p`)."""
    t = float(special.stdtrit(df, 1.0 - p / 2.0))
    return t / math.sqrt(df + t * t)


def _sig(value: float | None, p_adj: float | None, alpha: float) -> bool:
    return value is not None and p_adj is not None and p_adj < alpha and value > 0


def _larger(x: float | None, y: float | None) -> bool:
    return x is not None and y is not None and x > y


def _timeline(
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
        vals = {name: _clean(float(r[g])) for name, r in per.items()}
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
