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

from dsp.mirroring.analyze import analyze_mirroring
from dsp.mirroring.correction import (
    CORRECTION,
    FEATURE_WEIGHTS,
    LARGE_EFFECT_R,
    TEST_WEIGHTS,
)
from dsp.mirroring.inputs import (
    FEATURE_ALIASES,
    FEATURES,
    PROSODY_FEATURES,
    TEMPO_FEATURES,
    TIMING_FEATURES,
    TONE_FEATURES,
    UNITS,
    ZSCORED,
    FloatArray,
    IntArray,
    ShamCall,
    SpeakerUnits,
    WindowSeries,
)
from dsp.mirroring.results import (
    Convergence,
    DirectionalSync,
    FeatureMirroring,
    MirroringResult,
    Proximity,
    Scores,
    TimelinePoint,
    WindowedSync,
)
from dsp.mirroring.stats import benjamini_hochberg, bh_rank_one_threshold

__all__ = [
    "CORRECTION",
    "FEATURES",
    "FEATURE_ALIASES",
    "FEATURE_WEIGHTS",
    "LARGE_EFFECT_R",
    "PROSODY_FEATURES",
    "TEMPO_FEATURES",
    "TEST_WEIGHTS",
    "TIMING_FEATURES",
    "TONE_FEATURES",
    "UNITS",
    "ZSCORED",
    "Convergence",
    "DirectionalSync",
    "FeatureMirroring",
    "FloatArray",
    "IntArray",
    "MirroringResult",
    "Proximity",
    "Scores",
    "ShamCall",
    "SpeakerUnits",
    "TimelinePoint",
    "WindowSeries",
    "WindowedSync",
    "analyze_mirroring",
    "benjamini_hochberg",
    "bh_rank_one_threshold",
]
