"""Sliding windows on one clock for both speakers (TAMA-style).

Each window summarises each speaker's speech inside it: pitch level and spread, level, and
rates. A window where a speaker has too little speech gives NaN for that speaker, with the
speech seconds kept as coverage, so later steps can weight or skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp import pitch
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


def _time_inside_before(seg: FloatArray, t_s: FloatArray) -> FloatArray:
    """Total time of the sorted, disjoint segments ``seg`` ((k, 2)) that lies before ``t_s``."""
    durations = seg[:, 1] - seg[:, 0]
    done_before = np.concatenate([[0.0], np.cumsum(durations)])
    i = np.searchsorted(seg[:, 0], t_s, side="right") - 1  # last segment starting <= t
    safe = np.clip(i, 0, None)
    inside = np.clip(t_s - seg[safe, 0], 0.0, durations[safe])
    return np.where(i >= 0, done_before[safe] + inside, 0.0)


def _segments_overlap_s(
    segments_s: FloatArray, starts_s: FloatArray, ends_s: FloatArray
) -> FloatArray:
    """Seconds of ``segments_s`` ((k, 2), sorted, disjoint) inside each [start, end).

    Prefix sums: O((k + W) log k) time and O(k + W) memory, whatever the call length.
    """
    seg = np.asarray(segments_s, dtype=np.float64).reshape(-1, 2)
    if seg.shape[0] == 0:
        return np.zeros(len(starts_s))
    return _time_inside_before(seg, ends_s) - _time_inside_before(seg, starts_s)


def speaker_windows(
    starts_s: FloatArray,
    *,
    window_s: float,
    speech: npt.NDArray[np.bool_],
    f0_st: FloatArray,
    level_db: FloatArray,
    nuclei_s: FloatArray,
    ipus_s: FloatArray,
    turns_s: FloatArray,
    min_speech_s: float = 2.0,
    min_voiced_s: float = 1.0,
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Window values for one speaker.

    Parameters
    ----------
    starts_s : (W,) window starts.
    speech : (T,) bool speech frames of this speaker.
    f0_st : (T,) f0 in semitones, NaN where unvoiced or not speech.
    level_db : (T,) frame level in dB.
    nuclei_s : (m,) syllable nucleus times.
    ipus_s, turns_s : (k, 2) this speaker's IPUs and turns.

    Returns
    -------
    speech_s : (W,) seconds of speech in each window, and a dict of (W,) values named as in
    :data:`WINDOW_FEATURES` (NaN with too little speech or too few voiced frames).
    """
    ends_s = starts_s + window_s
    n_frames = len(speech)
    lo = np.clip(np.round(starts_s / HOP_S).astype(int), 0, n_frames)
    hi = np.clip(np.round(ends_s / HOP_S).astype(int), 0, n_frames)
    speech_cum = np.concatenate([[0], np.cumsum(speech)])
    speech_s = (speech_cum[hi] - speech_cum[lo]) * HOP_S
    level_on_speech = np.where(speech, level_db, np.nan)
    pitch_median = np.full(len(starts_s), np.nan)
    pitch_sd = np.full(len(starts_s), np.nan)
    loudness = np.full(len(starts_s), np.nan)
    enough = speech_s >= min_speech_s
    for w in np.flatnonzero(enough):
        f0_window = f0_st[lo[w] : hi[w]]
        voiced = f0_window[np.isfinite(f0_window)]
        if voiced.size * HOP_S >= min_voiced_s:
            pitch_median[w] = np.median(voiced)
            pitch_sd[w] = pitch.spread_st(voiced)
        loudness[w] = np.nanmean(level_on_speech[lo[w] : hi[w]])
    nuclei = np.sort(np.asarray(nuclei_s, dtype=np.float64))
    syllables = np.searchsorted(nuclei, ends_s) - np.searchsorted(nuclei, starts_s)
    turn_time = _segments_overlap_s(turns_s, starts_s, ends_s)
    ipu_time = _segments_overlap_s(ipus_s, starts_s, ends_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        speaking = np.where(enough & (turn_time > 0), syllables / turn_time, np.nan)
        articulation = np.where(enough & (ipu_time > 0), syllables / ipu_time, np.nan)
    values = {
        "pitch_median_st": pitch_median,
        "pitch_sd_st": pitch_sd,
        "loudness_db": loudness,
        "speaking_rate_syl_per_s": speaking,
        "articulation_rate_syl_per_s": articulation,
    }
    return speech_s, values
