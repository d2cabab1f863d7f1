"""The analysis report: the one JSON document the CLI prints and the service returns.

Undefined numbers (too little speech, no turns...) are ``null``, never NaN; the builder
turns NaN into ``None``. Bump ``SCHEMA_VERSION`` when the shape changes and
``dsp.pipeline.ANALYSIS_VERSION`` when the numbers change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.params import AnalysisConfig

# 1.1: ``skipped``; 1.2: mirroring features ``pause``, ``latency``; 1.3: ``r_needed``,
# ``mirroring.detectable_r`` and the ``mirroring.low_power`` warning
SCHEMA_VERSION = "1.3"

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


class _Open(BaseModel):
    """Mirroring sections: the documented fields are typed; diagnostics may be added."""

    model_config = ConfigDict(extra="allow")


class DirectionalSynchrony(_Open):
    r: float | None = Field(
        description="Partial correlation: follower's turn-initial value vs "
        "the leader's preceding turn-final value, given the follower's own past."
    )
    p: float | None = Field(description="Two-sided p-value, before correction.")
    p_adj: float | None = Field(
        None, description="p-value after correction across the call's tests."
    )
    n: int = Field(description="Exchanges used.")
    r_needed: float | None = Field(
        None,
        description="Smallest positive r this test is significant at on this call, "
        "whatever the other tests say (its degrees of freedom and the call's correction).",
    )
    reason: str | None = Field(None, description="Why r is null (too little data).")


class WindowedSynchrony(_Open):
    r: float | None = Field(description="Largest cross-correlation of the window series over lags.")
    lag_s: float | None = Field(description="Lag of that correlation; > 0: the customer follows.")
    p: float | None
    reason: str | None = None


class Synchrony(_Open):
    agent_follows_customer: DirectionalSynchrony
    customer_follows_agent: DirectionalSynchrony
    windowed: WindowedSynchrony


class ConvergenceResult(_Open):
    value: float | None = Field(description="Trend of closeness over the call (> 0 converging).")
    p: float | None
    direction: Literal["converging", "diverging", "none"] | None
    reason: str | None = None


class FeatureMirroring(_Open):
    unit: str
    proximity: dict[str, Any]
    convergence: ConvergenceResult
    synchrony: Synchrony
    follower: Literal["agent", "customer"] | None
    mirrored: bool | None = Field(description="True only when significant after correction.")
    reason: str | None = None


class ScorePair(_Model):
    agent: float | None = Field(description="0-100; 50 = what chance pairing gives.")
    customer: float | None


class Scores(_Model):
    tone: ScorePair
    tempo: ScorePair


class Mirroring(_Open):
    features: dict[str, FeatureMirroring] = Field(
        description="Per feature: pitch_level, pitch_variability, loudness, speaking_rate, "
        "articulation_rate (voice), pause and latency (turn timing, seconds: exchange-level "
        "synchrony and proximity only)."
    )
    timeline: list[dict[str, Any]]
    scores: Scores
    detectable_r: float | None = Field(
        None,
        description="Median r_needed of the voice features' directional tests: how strong "
        "following must be for this call to show it (above 0.5: warning mirroring.low_power).",
    )


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
    audio: Audio
    roles: Roles
    speakers: Speakers
    conversation: Conversation
    segments: SpeakerSegments
    windows: list[Window]
    mirroring: Mirroring | None = None
    warnings: list[Warning]
    skipped: list[SkippedMetric] = Field(
        default_factory=list,
        description="Every summary metric that is null, with why (too little speech, too "
        "few exchanges or windows, ...); per-window values are not listed.",
    )
    config: AnalysisConfig
