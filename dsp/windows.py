"""Sliding windows on one clock for both speakers (TAMA-style).

Each window summarises each speaker's speech inside it: pitch level and spread, loudness,
and rates, each a :mod:`dsp.measures` measure over the speaker's speaking spans inside the
window. A window where a speaker has too little speech gives NaN for that speaker, with the
speech seconds kept as coverage, so later steps can weight or skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp import measures
from dsp.errors import ParameterError
from dsp.frames import HOP_S

FloatArray = npt.NDArray[np.float64]

WINDOW_FEATURES = (
    "pitch_median_st",
    "pitch_sd_st",
    "loudness_db",
    "speaking_rate_syl_per_s",
    "articulation_rate_syl_per_s",
)


@dataclass(frozen=True)
class Windows:
    """Per-window values for both speakers.

    ``values[name]`` is ``(2, W)``: row 0 is the agent, row 1 the customer; NaN where that
    speaker has less than ``min_speech_s`` of speech in the window. ``speech_s`` is ``(2, W)``.
    """

    starts_s: FloatArray
    ends_s: FloatArray
    window_s: float
    hop_s: float
    speech_s: FloatArray
    values: dict[str, FloatArray]


def window_starts_s(duration_s: float, *, window_s: float, hop_s: float) -> FloatArray:
    """Starts of the windows that fit in the call; one window when the call is shorter."""
    if window_s <= 0 or hop_s <= 0:
        raise ParameterError(f"window_s and hop_s must be > 0, got {window_s} and {hop_s}")
    if hop_s > window_s:
        raise ParameterError(f"hop_s ({hop_s}) must not exceed window_s ({window_s})")
    last = max(duration_s - window_s, 0.0)
    return np.arange(0.0, last + 1e-9, hop_s)


def speaker_windows(
    starts_s: FloatArray,
    *,
    window_s: float,
    track: measures.SpeakerTrack,
    spans_s: FloatArray,
    min_speech_s: float = 2.0,
    min_voiced_s: float = 1.0,
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Window values for one speaker: each a :mod:`dsp.measures` measure over the speaker's
    speaking spans clipped to the window.

    Parameters
    ----------
    starts_s : (W,) window starts.
    window_s : window length (s).
    track : the speaker's :class:`dsp.measures.SpeakerTrack`.
    spans_s : (k, 2) the speaker's speaking spans (:func:`dsp.measures.speaking_spans_s`).
    min_speech_s : least phonation (s) in the window for any value.
    min_voiced_s : least voicing (s) in the window for the pitch values.

    Returns
    -------
    speech_s : (W,) seconds of the speaker's speech (phonation) in each window, and a dict
    of (W,) values named as in :data:`WINDOW_FEATURES` (NaN with too little speech or too
    few voiced frames).
    """
    n_windows = len(starts_s)
    n_frames = track.n_frames
    spans = track.frames(spans_s)
    lo = np.clip(np.round(np.asarray(starts_s) / HOP_S), 0, n_frames).astype(np.int64)
    hi = np.clip(np.round((np.asarray(starts_s) + window_s) / HOP_S), 0, n_frames).astype(np.int64)
    speech_s = np.zeros(n_windows)
    values = {name: np.full(n_windows, np.nan) for name in WINDOW_FEATURES}
    for w in range(n_windows):
        inside = np.column_stack([np.maximum(spans[:, 0], lo[w]), np.minimum(spans[:, 1], hi[w])])
        inside = inside[inside[:, 1] > inside[:, 0]]
        r = measures.rates(track, inside, min_phonation_s=min_speech_s)
        speech_s[w] = r.phonation_time_s
        if not np.isfinite(r.articulation_rate_syl_per_s):
            continue
        values["pitch_median_st"][w] = measures.pitch_level_st(
            track, inside, min_voiced_s=min_voiced_s
        )
        values["pitch_sd_st"][w] = measures.pitch_spread_st(
            track, inside, min_voiced_s=min_voiced_s
        )
        values["loudness_db"][w] = measures.loudness_db(track, inside)
        values["speaking_rate_syl_per_s"][w] = r.speaking_rate_syl_per_s
        values["articulation_rate_syl_per_s"][w] = r.articulation_rate_syl_per_s
    return speech_s, values
