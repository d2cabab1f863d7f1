"""What the mirroring statistics read: feature names, units and aliases, and the input
tables (:class:`SpeakerUnits` per speaker, :class:`WindowSeries` for both speakers on one
clock, :class:`ShamCall` for batch baselines)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

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
            values=canonical(windows.values),
            coverage=getattr(windows, "speech_s", None),
        )


@dataclass(frozen=True, eq=False)
class ShamCall:
    """Another call used as a source of sham partners (agent, customer, windows)."""

    agent: SpeakerUnits
    customer: SpeakerUnits
    windows: WindowSeries


def canonical(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` keyed by canonical feature names (aliases mapped, unknown names dropped)."""
    out: dict[str, Any] = {}
    for key, val in values.items():
        name = FEATURE_ALIASES.get(key, key)
        if name in FEATURES:
            out[name] = val
    return out


def unit_series(units: SpeakerUnits, name: str) -> tuple[FloatArray, FloatArray | None]:
    """A speaker's per-IPU values of ``name`` with start times, or its per-turn values
    (at each turn's first IPU start) when the feature is given per turn only."""
    start = np.asarray(units.start_s, dtype=np.float64).ravel()
    tf = canonical(units.turn_features).get(name)
    if tf is not None and units.turn_labels is not None:
        labels = np.asarray(units.turn_labels).ravel()
        turn = np.asarray(units.turn_index).ravel()
        times = np.array(
            [start[turn == lab].min() if np.any(turn == lab) else np.nan for lab in labels],
            dtype=np.float64,
        )
        return times, np.asarray(tf, dtype=np.float64).ravel()
    vals = canonical(units.features).get(name)
    return start, None if vals is None else np.asarray(vals, dtype=np.float64)
