"""The analysis report: the one JSON document the CLI prints and the service returns.

Undefined numbers (too little speech, no turns...) are ``null``, never NaN; the builder
turns NaN into ``None``. Bump ``SCHEMA_VERSION`` when the shape changes and
``dsp.pipeline.ANALYSIS_VERSION`` when the numbers change.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from models.params import AnalysisConfig

# 1.1: ``skipped``; 1.2: mirroring features ``pause``, ``latency``; 1.3: ``r_needed``,
# ``mirroring.detectable_r`` and the ``mirroring.low_power`` warning; 1.4: the mirroring
# section fully declared (every field it always carried, extra fields forbidden)
# 2.0: scores are objects (score 0 = within chance, verdict, r and its interval), not
# 100 Phi(Z) numbers; 2.1: ``summary``; 2.2: ``verbal`` (asked for with ``config.verbal``)
SCHEMA_VERSION = "2.2"

Segment = tuple[float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Audio(_Model):
    duration_s: float = Field(description="Decoded duration, s.")
    sample_rate_hz: int = Field(description="Sample rate of the file as sent, Hz.")
    analysis_sample_rate_hz: int = Field(
        description="Rate analysed at: the file's own rate, capped at 16 kHz; never upsampled."
    )
    channels: int
    codec: str
    container: str


class Roles(_Model):
    agent_channel: Literal[0, 1]
    customer_channel: Literal[0, 1]


class Pitch(_Model):
    median_hz: float | None
    median_st: float | None = Field(description="Median f0 in semitones re 100 Hz.")
    p10_hz: float | None
    p90_hz: float | None
    range_st: float | None = Field(description="p90 - p10 in semitones: inflection range.")
    sd_st: float | None = Field(
        description="Standard deviation of f0 in semitones, frames more than 8 st from the "
        "median (octave errors) left out."
    )


class Loudness(_Model):
    median_db: float | None = Field(description="Median frame level on speech, dBFS.")
    p90_db: float | None


class Rate(_Model):
    syllables: int = Field(description="Syllable nuclei detected (no transcript needed).")
    speaking_rate_syl_per_s: float | None = Field(
        description="Syllables per second of the speaker's turns, pauses included."
    )
    articulation_rate_syl_per_s: float | None = Field(
        description="Syllables per second of phonation (pauses excluded)."
    )


class Speaker(_Model):
    talk_time_s: float
    talk_ratio: float | None = Field(description="Share of all talk time (both speakers).")
    turns: int
    ipus: int = Field(description="Inter-pausal units: stretches of speech between pauses.")
    response_latency_median_s: float | None = Field(
        description="Median gap between the partner's turn end and this speaker's turn start."
    )
    response_latency_p90_s: float | None
    interruptions: int = Field(description="Turns taken while the partner was still speaking.")
    backchannels: int = Field(description="Short IPUs inside the partner's turn (not turns).")
    longest_monologue_s: float | None
    median_pause_s: float | None = Field(
        description="Median silent pause within this speaker's turns."
    )
    pitch: Pitch
    loudness: Loudness
    rate: Rate


class Speakers(_Model):
    agent: Speaker
    customer: Speaker


class Conversation(_Model):
    switches_per_min: float | None = Field(description="Floor changes per minute of call.")
    overlap_s: float = Field(description="Time both parties speak at once, s.")
    silence_threshold_s: float = Field(description="Threshold used for `silences`, s.")
    silences: list[Segment] = Field(description="Stretches with nobody speaking, >= threshold.")


class SpeakerSegments(_Model):
    """Each party's speech at the turn level: IPUs joined across pauses shorter than
    ``config.segment_join_s`` inside the party's own turn (the partner silent)."""

    agent: list[Segment]
    customer: list[Segment]


class WindowSpeaker(_Model):
    speech_s: float
    pitch_median_st: float | None
    pitch_sd_st: float | None
    loudness_db: float | None
    speaking_rate_syl_per_s: float | None
    articulation_rate_syl_per_s: float | None


class Window(_Model):
    start_s: float
    end_s: float
    agent: WindowSpeaker
    customer: WindowSpeaker


class DirectionalSynchrony(_Model):
    """Does the follower's turn-initial value track the leader's preceding turn-final
    value? (docs/mirroring.md, Directional synchrony)"""

    r: float | None = Field(
        description="Partial correlation (-1..1): follower's turn-initial value vs the "
        "leader's preceding turn-final value, given the follower's own past (previous "
        "turn-final value, mean of the last 4 turn means)."
    )
    p: float | None = Field(description="Two-sided p-value of r (t-test), before correction.")
    p_adj: float | None = Field(
        None, description="p-value after weighted Benjamini-Hochberg across the call's tests."
    )
    n: int = Field(
        description="Exchanges used (follower's, leader's and own previous values all known)."
    )
    n_eff: float | None = Field(
        description="Exchanges the t-test's degrees of freedom rest on (equal to n: no "
        "effective-sample-size correction); null without r."
    )
    r_needed: float | None = Field(
        None,
        description="Smallest positive r this test is significant at on this call, "
        "whatever the other tests say (its degrees of freedom and the call's correction).",
    )
    reason: str | None = Field(None, description="Why r is null (too little data).")


class WindowedSynchrony(_Model):
    """Prewhitened lagged cross-correlation of the two speakers' window series
    (docs/mirroring.md, Windowed synchrony). Voice features only."""

    r: float | None = Field(
        description="Largest cross-correlation (-1..1) of the detrended, AR(1)-prewhitened "
        "window series over lags."
    )
    lag_s: float | None = Field(
        description="Lag of that correlation, s; > 0: the customer's series follows the agent's."
    )
    p: float | None = Field(
        description="Two-sided p-value of r at that lag (Bartlett effective n), Sidak-corrected "
        "for the lags tried; before the call's correction."
    )
    p_adj: float | None = Field(
        description="p-value after weighted Benjamini-Hochberg across the call's tests."
    )
    n: int = Field(description="Windows where both speakers have a value.")
    chance_r: float | None = Field(
        description="Mean largest |r| over lags against circular shifts of the customer's "
        "series: what chance gives on this call (0..1)."
    )
    p_shift: float | None = Field(
        description="Circular-shift p-value of |r| (resolution 1/(shifts + 1)); reported, "
        "not used for any decision."
    )
    reason: str | None = Field(None, description="Why r is null (too little data).")


class Synchrony(_Model):
    agent_follows_customer: DirectionalSynchrony = Field(
        description="The agent is the follower: the agent's turn after a customer's turn."
    )
    customer_follows_agent: DirectionalSynchrony = Field(
        description="The customer is the follower: the customer's turn after an agent's turn."
    )
    windowed: WindowedSynchrony = Field(
        description="Lagged cross-correlation of the window series (voice features)."
    )


class ConvergenceResult(_Model):
    """Trend of the speakers' distance over the call (docs/mirroring.md, Convergence). Null
    values for loudness (levels not comparable across channels) and the timing features
    (no window series)."""

    value: float | None = Field(
        description="Change of the fitted distance between the speakers per minute, feature "
        "units per minute (st/min for pitch, syll/s per min for rates); > 0 converging."
    )
    unit: Literal["per_min"] = Field(description="Time unit of value: per minute.")
    r_time: float | None = Field(
        description="Correlation (-1..1) of minus the distance with time (descriptive)."
    )
    p: float | None = Field(
        description="Two-sided p-value of the trend (GLS with AR(1) errors); with shams, "
        "the larger of it and the sham comparison's p. Before correction."
    )
    p_adj: float | None = Field(
        description="p-value after weighted Benjamini-Hochberg across the call's tests."
    )
    direction: Literal["converging", "diverging", "none"] | None = Field(
        description="converging / diverging when significant after correction (sign of "
        "value), none otherwise; null without a result."
    )
    n: int = Field(description="Windows where both speakers have a value.")
    distance_start: float | None = Field(
        description="|agent - customer| at the first window, from the fitted line of their "
        "difference (the same fit as the test), feature units."
    )
    distance_start_ci: tuple[float, float] | None = Field(
        description="95 % interval of distance_start, feature units."
    )
    distance_end: float | None = Field(description="The same at the last window, feature units.")
    distance_end_ci: tuple[float, float] | None = Field(
        description="95 % interval of distance_end, feature units."
    )
    agent_moved: float | None = Field(
        description="How far the agent's fitted line moved over the call, toward the "
        "customer's starting level (> 0 toward, < 0 away), feature units."
    )
    agent_moved_ci: tuple[float, float] | None = Field(
        description="95 % interval of agent_moved, feature units."
    )
    customer_moved: float | None = Field(
        description="How far the customer moved toward the agent's starting level (> 0 "
        "toward), feature units."
    )
    customer_moved_ci: tuple[float, float] | None = Field(
        description="95 % interval of customer_moved, feature units."
    )
    sham_z: float | None = Field(
        description="(value - mean over sham pairs) / their sd, in sd units: sham pairs are "
        "an agent and a customer of two other calls of the batch; null without >= 3."
    )
    reason: str | None = Field(None, description="Why value is null.")


class LocalProximity(_Model):
    """Adjacent vs non-adjacent turns (docs/mirroring.md, Local proximity)."""

    value: float | None = Field(
        description="Mean over exchanges of -|follower's turn-initial - leader's turn-final| "
        "minus its mean over the leader's turns 2..6 turns away; > 0: closer to the turn "
        "just answered. Feature units (z for loudness)."
    )
    p: float | None = Field(
        description="Two-sided p-value (t-test with a Bartlett effective n), before correction."
    )
    p_adj: float | None = Field(
        description="p-value after weighted Benjamini-Hochberg across the call's tests."
    )
    n: int = Field(description="Exchanges used, both directions.")
    reason: str | None = Field(description="Why value is null (too little data).")


class GlobalProximity(_Model):
    """Distance between the speakers' means over the call (docs/mirroring.md, Global
    proximity)."""

    distance: float | None = Field(
        description="|agent mean - customer mean| of the IPU (or turn) values, feature units; "
        "null for loudness (levels not comparable across channels)."
    )
    sham_z: float | None = Field(
        description="(distance - mean sham distance) / their sd, in sd units, sham distances "
        "pairing each speaker with the other calls' partners in a batch; < 0: closer than "
        "chance; null without >= 3."
    )
    reason: str | None = Field(description="Why distance is null.")


# ``global`` is a Python keyword: a TypedDict carries the JSON key as it is.
ProximityResult = TypedDict(
    "ProximityResult",
    {
        "local": Annotated[
            LocalProximity, Field(description="Adjacent vs non-adjacent turns, per exchange.")
        ],
        "global": Annotated[
            GlobalProximity, Field(description="Distance between the speakers' means.")
        ],
    },
)
ProximityResult.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


class FeatureMirroring(_Model):
    """Every mirroring statistic of one feature."""

    unit: str = Field(
        description="Unit of the feature's values: st (pitch, semitones re 100 Hz), z "
        "(loudness, z-scored per speaker), syll/s (rates), s (pause, latency)."
    )
    proximity: ProximityResult = Field(description="How close the speakers' values are.")
    convergence: ConvergenceResult = Field(
        description="Whether the speakers get closer over the call."
    )
    synchrony: Synchrony = Field(description="Whether one speaker's values track the other's.")
    follower: Literal["agent", "customer"] | None = Field(
        description="The direction with the larger r, when that direction is significant "
        "after correction with r > 0; null otherwise."
    )
    mirrored: bool | None = Field(
        description="True when any of the feature's tests is significant after correction in "
        "the mirroring sense (positive synchrony, converging, positive local proximity); null "
        "when no test could run."
    )
    reason: str | None = Field(None, description="Why mirrored is null.")


#: The mirroring features, in report order (``dsp.mirroring.FEATURES``).
FeatureName = Literal[
    "pitch_level",
    "pitch_variability",
    "loudness",
    "speaking_rate",
    "articulation_rate",
    "pause",
    "latency",
]


class TimelinePoint(_Model):
    """Rolling correlation over a few consecutive windows (descriptive, no p-values)."""

    start_s: float = Field(description="Start of the first window of the span, s.")
    end_s: float = Field(description="End of the last window of the span, s.")
    tone_r: float | None = Field(
        description="Mean rolling r of pitch level, pitch variability and loudness (-1..1)."
    )
    tempo_r: float | None = Field(
        description="Mean rolling r of speaking and articulation rate (-1..1)."
    )
    features: dict[FeatureName, float | None] = Field(
        description="Rolling r per feature (-1..1); null when fewer than span - 1 windows have "
        "both speakers (always for pause and latency, which have no window series)."
    )


class DirectionScore(_Model):
    """How strongly one speaker followed the other in a dimension, with its uncertainty."""

    score: float = Field(
        description="0-100: 100 x the lower end of r's confidence interval, floored at 0. "
        "0 = no more than two strangers could get by chance (most unrelated calls score 0); "
        "above 0 = following shown, at least that strong (30 = at least a moderate r 0.3)."
    )
    verdict: Literal["above chance", "within chance", "below chance"] = Field(
        description="Where the confidence interval of r lies: above 0 (following shown), "
        "around 0 (chance can explain it), below 0 (moving apart: disentrainment)."
    )
    r: float = Field(
        description="Following strength: the dimension's directional partial correlations "
        "averaged on Fisher's z scale (-1..1)."
    )
    r_low: float = Field(description="Lower end of r's confidence interval (level 1 - alpha).")
    r_high: float = Field(description="Upper end of r's confidence interval.")
    z: float = Field(description="Standard normal deviate of r against chance pairing.")
    features: int = Field(description="Features of the dimension with a directional result.")


class ScorePair(_Model):
    agent: DirectionScore | None = Field(
        description="How strongly the agent followed the customer; null when no feature of "
        "the dimension has a result."
    )
    customer: DirectionScore | None = Field(
        description="How strongly the customer followed the agent."
    )


class Scores(_Model):
    tone: ScorePair = Field(description="Pitch level, pitch variability, loudness.")
    tempo: ScorePair = Field(description="Speaking and articulation rate.")


class Mirroring(_Model):
    """Tone and tempo mirroring of the call; definitions in docs/mirroring.md."""

    features: dict[FeatureName, FeatureMirroring] = Field(
        description="Every statistic, per feature: pitch_level (semitones re 100 Hz), "
        "pitch_variability (semitones), loudness (z-scored per speaker: synchrony and local "
        "proximity only), speaking_rate (syllables per second, pauses included), "
        "articulation_rate (syllables per second of phonation), pause (mean pause between "
        "a turn's IPUs, s) and latency (floor-transfer gap before a turn, s; negative: taken "
        "in overlap); pause and latency have exchange-level synchrony and proximity only."
    )
    timeline: list[TimelinePoint] = Field(
        description="One point per window start, each over timeline_span (8) windows."
    )
    scores: Scores = Field(
        description="Per dimension and direction, how strongly one speaker followed the "
        "other: a 0-100 score that is 0 when chance can explain it, and its verdict."
    )
    n_exchanges: int = Field(
        description="Exchanges (a turn answering the other speaker's turn), both directions."
    )
    n_windows: int = Field(description="Windows on the call's clock.")
    n_shams: int = Field(description="Other calls of the batch used as sham partners.")
    alpha: float = Field(description="Significance level after correction.")
    correction: str = Field(
        description="Multiple-testing correction over the call's tests "
        "(weighted-benjamini-hochberg)."
    )
    detectable_r: float | None = Field(
        None,
        description="Median r_needed of the voice features' directional tests: how strong "
        "following must be for this call to show it (above 0.5: warning mirroring.low_power).",
    )
    warnings: list[str] = Field(description="What the mirroring analysis could not do.")


class Recognizer(_Model):
    """The speech recogniser and models that ran (all shipped inside its package)."""

    engine: str = Field(description="Recogniser, e.g. pocketsphinx.")
    version: str
    language: str = Field(description="Language of the models, BCP 47 (en-US).")
    acoustic_model: str
    language_model: str
    dictionary: str


class EchoExample(_Model):
    """One echo: a turn repeating content words from the end of the partner's turn."""

    start_s: float = Field(description="Start of the echoing turn, s.")
    end_s: float
    partner_start_s: float = Field(description="Start of the partner's turn it echoes, s.")
    partner_end_s: float
    words: list[str] = Field(description="The repeated content words, as recognised.")
    question: bool = Field(description="An echo question: short and ending rising in pitch.")
    rise_st: float | None = Field(
        description="Pitch movement over the turn's last 0.6 s, semitones (null: too little "
        "voicing)."
    )


class VerbalSpeaker(_Model):
    """One speaker's echoes of the partner."""

    words: int = Field(description="Words recognised in this speaker's speech.")
    speech_s: float = Field(description="Speech decoded (the speaker's segments), s.")
    echoes: int = Field(
        description="Turns that repeat content words from the end of the "
        "partner's turn just before."
    )
    echo_questions: int = Field(description="Echoes that are short and end rising in pitch.")
    partner_turns: int = Field(description="Partner turns this speaker answered.")
    echoes_per_10_partner_turns: float | None
    examples: list[EchoExample] = Field(description="The first echoes (at most 5).")


class VerbalSpeakers(_Model):
    agent: VerbalSpeaker
    customer: VerbalSpeaker


class LexicalMirroring(_Model):
    """Content-word overlap of answering turns with the partner's adjacent turn against the
    partner's turns 2..6 away (the local-proximity design on words; docs/verbal.md)."""

    adjacent: float | None = Field(
        description="Mean share of an answer's content words found in the partner's turn "
        "just before."
    )
    nonadjacent: float | None = Field(
        description="The same share against the partner's turns 2..6 away (the baseline)."
    )
    difference: float | None = Field(description="adjacent - nonadjacent, mean over exchanges.")
    p: float | None = Field(description="Two-sided p (t-test with a Bartlett effective n).")
    n: int = Field(description="Exchanges used, both directions.")
    mirrored: bool | None = Field(description="difference > 0 with p below 0.05.")
    reason: str | None = Field(description="Why the values are null.")


class Verbal(_Model):
    """Verbal mirroring from recognised words (English): echoes, echo questions and lexical
    mirroring. Word recognition on telephone audio is far from perfect: docs/verbal.md
    gives its measured error rates and what they do to these counts."""

    recognizer: Recognizer
    speakers: VerbalSpeakers
    lexical: LexicalMirroring


class Warning(_Model):
    code: str
    message: str


class SkippedMetric(_Model):
    metric: str = Field(
        description="Dotted path, in the report, of the metric that is null "
        "(e.g. speakers.customer.pitch, mirroring.features.pitch_level.convergence)."
    )
    reason: str = Field(description="Why it could not be measured.")


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    analysis_version: str
    source: str | None = Field(None, description="File name analysed, when known.")
    summary: list[str] = Field(
        default_factory=list,
        description="The report in 3-6 plain sentences, generated from its numbers: who "
        "talked how much; who adapted to whom in which feature and how strong the evidence "
        "is (adjusted p below 0.001 very strong, 0.01 strong, alpha moderate); the tone / "
        "tempo scores when beyond chance; convergence and who moved; when tone / tempo moved "
        "together or apart (rolling r beyond +-0.5); and the caveat when the call is too "
        "short to tell (mirroring.low_power). Wording: docs/report.md.",
    )
    audio: Audio
    roles: Roles
    speakers: Speakers
    conversation: Conversation
    segments: SpeakerSegments
    windows: list[Window]
    mirroring: Mirroring | None = None
    verbal: Verbal | None = Field(
        None, description="Verbal mirroring; only when asked for (config.verbal)."
    )
    warnings: list[Warning]
    skipped: list[SkippedMetric] = Field(
        default_factory=list,
        description="Every summary metric that is null, with why (too little speech, too "
        "few exchanges or windows, ...); per-window values are not listed.",
    )
    config: AnalysisConfig
