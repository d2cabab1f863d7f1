"""One definition of each voice measure, over any set of spans.

A *span set* is a list of ``[start_s, end_s]`` stretches of the call: the speaker's whole
speaking time, one turn, one IPU, or the speaking time inside one window. Every level of the
report (call, turn, IPU, window) measures the same quantities with the same functions, only
over different span sets:

========================  ===============================================================
pitch level (st)          median f0 of the voiced speech frames in the spans
pitch spread (st)         :func:`dsp.pitch.spread_st` of those frames
loudness (dB)             median frame level of the speech frames in the spans
phonation time (s)        sounding speech frames in the spans (:func:`dsp.rate.phonation_frames`)
syllables                 syllable nuclei in the spans (every nucleus is on a speech frame)
speaking rate (syl/s)     syllables / total span time (pauses inside the spans included)
articulation rate (syl/s) the same syllables / phonation time
pause (s)                 median silent gap between consecutive IPUs inside the spans
========================  ===============================================================

Speaking rate never exceeds articulation rate: both count the same syllables, and the
phonation time is frames *inside* the spans, so it is never longer than the spans. Both
rates are defined (or both NaN) by one gate on the phonation time.

Spans are put on the 10 ms clock of :mod:`dsp.frames` (frame ``i`` is ``[i, i + 1) *
HOP_S``; edges rounded as :func:`dsp.frames.segments_to_mask` rounds them), clipped to the
track, and overlapping spans are merged, so a frame never counts twice. See docs/measures.md
for why each definition was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from dsp import pitch
from dsp.errors import ParameterError
from dsp.frames import HOP_S

_T = TypeVar("_T", bound=np.generic)  # an array's element type, kept by _take

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "Rates",
    "SpeakerTrack",
    "articulation_rate_syl_per_s",
    "loudness_db",
    "median",
    "pause_s",
    "phonation_time_s",
    "pitch_level_st",
    "pitch_spread_st",
    "rates",
    "span_frames",
    "span_time_s",
    "speaking_rate_syl_per_s",
    "speaking_spans_s",
    "syllables",
    "voiced_st",
]


@dataclass(frozen=True, eq=False)
class SpeakerTrack:
    """One speaker's per-frame tracks on the 10 ms clock, ready to be measured over spans.

    Build it with :meth:`build`, which enforces what the measures rely on: ``speech`` holds
    only frames inside the speaker's IPUs, ``phonation`` only speech frames, ``f0_st`` is NaN
    off speech, and every nucleus is on a speech frame.
    """

    speech: BoolArray  # (T,)
    phonation: BoolArray  # (T,) the speech frames that sound (dsp.rate.phonation_frames)
    f0_st: FloatArray  # (T,) NaN where unvoiced or not speech
    level_db: FloatArray  # (T,)
    nuclei_frames: IntArray  # (m,) sorted
    ipus_s: FloatArray  # (k, 2) in time order
    _phonation_before: IntArray = field(repr=False)  # (T + 1,) phonation frames before each

    @classmethod
    def build(
        cls,
        *,
        speech: npt.ArrayLike,
        f0_st: npt.ArrayLike,
        level_db: npt.ArrayLike,
        nuclei_frames: npt.ArrayLike,
        ipus_s: npt.ArrayLike,
        phonation: npt.ArrayLike | None = None,
    ) -> SpeakerTrack:
        """A track from a speech mask, f0 (semitones), frame level (dB), nuclei, IPUs and
        the phonation mask (default: every speech frame).

        Speech frames outside every IPU (blips shorter than the IPU minimum), f0, nuclei and
        phonation off the kept speech are dropped.
        """
        mask = np.asarray(speech, dtype=bool).ravel()
        n = mask.shape[0]
        f0 = np.asarray(f0_st, dtype=np.float64).ravel()
        level = np.asarray(level_db, dtype=np.float64).ravel()
        sounding = mask if phonation is None else np.asarray(phonation, dtype=bool).ravel()
        if f0.shape != (n,) or level.shape != (n,) or sounding.shape != (n,):
            raise ParameterError(
                f"speech, f0_st, level_db and phonation must be per-frame tracks of one "
                f"length, got {mask.shape}, {f0.shape}, {level.shape}, {sounding.shape}"
            )
        ipus = np.asarray(ipus_s, dtype=np.float64).reshape(-1, 2)
        in_ipu = np.zeros(n + 1, dtype=np.int64)
        for lo, hi in span_frames(ipus, n):
            in_ipu[lo] += 1
            in_ipu[hi] -= 1
        kept = mask & (np.cumsum(in_ipu[:n]) > 0)
        nuclei = np.sort(np.asarray(nuclei_frames, dtype=np.int64).ravel())
        nuclei = nuclei[(nuclei >= 0) & (nuclei < n)]
        nuclei = nuclei[kept[nuclei]]
        phonation_kept = kept & sounding
        return cls(
            speech=kept,
            phonation=phonation_kept,
            f0_st=np.where(kept, f0, np.nan),
            level_db=level,
            nuclei_frames=nuclei,
            ipus_s=ipus,
            _phonation_before=np.concatenate([[0], np.cumsum(phonation_kept, dtype=np.int64)]),
        )

    @property
    def n_frames(self) -> int:
        return int(self.speech.shape[0])

    def frames(self, spans_s: npt.ArrayLike) -> IntArray:
        """``spans_s`` as this track's merged frame spans (:func:`span_frames`)."""
        return span_frames(spans_s, self.n_frames)


def span_frames(spans_s: npt.ArrayLike, n_frames: int) -> IntArray:
    """Spans in seconds as sorted, disjoint ``[lo, hi)`` frame ranges, shape (j, 2).

    Edges are rounded to the 10 ms clock (``round(t / HOP_S)``), clipped to ``0 ..
    n_frames``; empty spans and spans with NaN edges are dropped; overlapping or touching
    spans are merged.
    """
    arr = np.asarray(spans_s, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ParameterError(f"spans must have shape (k, 2) of [start_s, end_s], got {arr.shape}")
    arr = arr[np.all(np.isfinite(arr), axis=1)]
    bounds = np.clip(np.round(arr / HOP_S), 0, n_frames).astype(np.int64)
    bounds = bounds[bounds[:, 1] > bounds[:, 0]]
    if bounds.shape[0] <= 1:
        return bounds.reshape(-1, 2)
    bounds = bounds[np.argsort(bounds[:, 0], kind="stable")]
    # a span starts a new run when it begins after every earlier span has ended
    reach = np.maximum.accumulate(bounds[:, 1])
    new_run = np.concatenate([[True], bounds[1:, 0] > reach[:-1]])
    run = np.cumsum(new_run) - 1
    lo = bounds[new_run, 0]
    hi = np.zeros(lo.shape[0], dtype=np.int64)
    np.maximum.at(hi, run, bounds[:, 1])
    return np.column_stack([lo, hi])


def speaking_spans_s(turns_s: npt.ArrayLike, ipus_s: npt.ArrayLike) -> FloatArray:
    """A speaker's speaking time as spans: their turns (pauses inside a turn included) and
    every IPU outside them (backchannels), in time order, overlaps not yet merged."""
    spans = np.concatenate(
        [
            np.asarray(turns_s, dtype=np.float64).reshape(-1, 2),
            np.asarray(ipus_s, dtype=np.float64).reshape(-1, 2),
        ]
    )
    return spans[np.argsort(spans[:, 0], kind="stable")]


def _frames(track: SpeakerTrack, spans: npt.ArrayLike) -> IntArray:
    arr = np.asarray(spans)
    if arr.dtype.kind in "iu":  # already frame spans from span_frames
        return arr.reshape(-1, 2).astype(np.int64)
    return track.frames(arr)


def span_time_s(track: SpeakerTrack, spans: npt.ArrayLike) -> float:
    """Total time of the spans (s), pauses inside them included.

    ``spans`` are seconds (float ``(k, 2)``) or frame spans from :func:`span_frames`
    (integer); the same holds for every measure below.
    """
    f = _frames(track, spans)
    return float(np.sum(f[:, 1] - f[:, 0]) * HOP_S)


def phonation_time_s(track: SpeakerTrack, spans: npt.ArrayLike) -> float:
    """Time the speaker sounds inside the spans (s): their phonation frames there."""
    f = _frames(track, spans)
    before = track._phonation_before
    return float(np.sum(before[f[:, 1]] - before[f[:, 0]]) * HOP_S)


def syllables(track: SpeakerTrack, spans: npt.ArrayLike) -> int:
    """Syllable nuclei inside the spans."""
    f = _frames(track, spans)
    nuclei = track.nuclei_frames
    inside = np.searchsorted(nuclei, f[:, 1]) - np.searchsorted(nuclei, f[:, 0])
    return int(np.sum(inside))


@dataclass(frozen=True)
class Rates:
    """Syllables, times and rates of one speaker over one span set.

    ``speaking_rate_syl_per_s = syllables / speaking_time_s`` and
    ``articulation_rate_syl_per_s = syllables / phonation_time_s``; both NaN when the
    phonation time is below the gate. ``phonation_time_s <= speaking_time_s``, so the
    speaking rate is never above the articulation rate.
    """

    syllables: int
    speaking_time_s: float
    phonation_time_s: float
    speaking_rate_syl_per_s: float
    articulation_rate_syl_per_s: float


def rates(track: SpeakerTrack, spans: npt.ArrayLike, *, min_phonation_s: float = 1.0) -> Rates:
    """Speaking and articulation rate over the spans.

    Parameters
    ----------
    track : SpeakerTrack
    spans : array_like, shape (k, 2)
        Spans in seconds, or frame spans from :func:`span_frames`.
    min_phonation_s : float
        Less phonation than this (s, >= 0) makes both rates NaN: a rate over a few
        syllables is noise (one syllable is 25 % of a 1 s IPU).
    """
    if not min_phonation_s >= 0:
        raise ParameterError(f"min_phonation_s must be >= 0 s, got {min_phonation_s}")
    f = _frames(track, spans)
    n = syllables(track, f)
    span = span_time_s(track, f)
    phonation = phonation_time_s(track, f)
    ok = phonation > 0 and phonation >= min_phonation_s - 1e-9
    nan = float("nan")
    return Rates(
        syllables=n,
        speaking_time_s=span,
        phonation_time_s=phonation,
        speaking_rate_syl_per_s=n / span if ok else nan,
        articulation_rate_syl_per_s=n / phonation if ok else nan,
    )


def speaking_rate_syl_per_s(
    track: SpeakerTrack, spans: npt.ArrayLike, *, min_phonation_s: float = 1.0
) -> float:
    """Syllables per second of span time (pauses inside the spans included)."""
    return rates(track, spans, min_phonation_s=min_phonation_s).speaking_rate_syl_per_s


def articulation_rate_syl_per_s(
    track: SpeakerTrack, spans: npt.ArrayLike, *, min_phonation_s: float = 1.0
) -> float:
    """Syllables per second of phonation (the speaker's sounding frames in the spans)."""
    return rates(track, spans, min_phonation_s=min_phonation_s).articulation_rate_syl_per_s


def _take(values: npt.NDArray[_T], f: IntArray) -> npt.NDArray[_T]:
    if f.shape[0] == 0:
        return np.zeros(0, dtype=values.dtype)
    if f.shape[0] == 1:
        return values[f[0, 0] : f[0, 1]]
    return np.concatenate([values[lo:hi] for lo, hi in f])


def median(values: npt.NDArray[np.floating[Any]]) -> float:
    """``np.median`` of a 1-D array, the same number at a fifth of its cost (the measures
    run once per IPU: thousands of times in a long call)."""
    n = values.size
    if n == 0:
        return float("nan")
    half = n // 2
    kth = (half, n - 1) if n % 2 else (half - 1, half, n - 1)
    part = np.partition(values, kth)  # the last is the largest, or NaN as numpy sorts it
    if np.isnan(part[-1]):
        return float("nan")
    return float(part[half] if n % 2 else (part[half - 1] + part[half]) / 2)


def voiced_st(track: SpeakerTrack, spans: npt.ArrayLike) -> FloatArray:
    """f0 (semitones) of the voiced speech frames inside the spans."""
    f0 = _take(track.f0_st, _frames(track, spans))
    return f0[np.isfinite(f0)]


def pitch_level_st(
    track: SpeakerTrack, spans: npt.ArrayLike, *, min_voiced_s: float = 0.1
) -> float:
    """Median f0 (semitones) of the voiced speech frames in the spans; NaN with less than
    ``min_voiced_s`` of voicing."""
    voiced = voiced_st(track, spans)
    if voiced.size == 0 or voiced.size * HOP_S < min_voiced_s - 1e-9:
        return float("nan")
    return median(voiced)


def pitch_spread_st(
    track: SpeakerTrack, spans: npt.ArrayLike, *, min_voiced_s: float = 0.1
) -> float:
    """Pitch spread (semitones, :func:`dsp.pitch.spread_st`) of the voiced speech frames in
    the spans; NaN with less than ``min_voiced_s`` of voicing."""
    voiced = voiced_st(track, spans)
    if voiced.size == 0 or voiced.size * HOP_S < min_voiced_s - 1e-9:
        return float("nan")
    return pitch.spread_st(voiced)


def speech_level_db(track: SpeakerTrack, spans: npt.ArrayLike) -> FloatArray:
    """Frame levels (dB) of the speech frames inside the spans."""
    f = _frames(track, spans)
    return _take(track.level_db, f)[_take(track.speech, f)]


def loudness_db(track: SpeakerTrack, spans: npt.ArrayLike, *, min_speech_s: float = 0.1) -> float:
    """Median frame level (dB) of the speech frames in the spans; NaN with less than
    ``min_speech_s`` of speech."""
    levels = speech_level_db(track, spans)
    if levels.size == 0 or levels.size * HOP_S < min_speech_s - 1e-9:
        return float("nan")
    return median(levels)


def pause_gaps_s(track: SpeakerTrack, spans: npt.ArrayLike) -> FloatArray:
    """Silent gaps between consecutive IPUs of the speaker that lie inside the spans (s)."""
    ipus = track.ipus_s
    if ipus.shape[0] < 2:
        return np.zeros(0, dtype=np.float64)
    gaps = np.column_stack([ipus[:-1, 1], ipus[1:, 0]])
    f = _frames(track, spans)
    lo = np.round(gaps[:, 0] / HOP_S)
    hi = np.round(gaps[:, 1] / HOP_S)
    # a gap is inside when one merged span holds all of it
    k = np.searchsorted(f[:, 0], lo, side="right") - 1
    inside = (k >= 0) & (hi > lo)
    inside[inside] &= f[k[inside], 1] >= hi[inside]
    return (gaps[inside, 1] - gaps[inside, 0]).astype(np.float64)


def pause_s(track: SpeakerTrack, spans: npt.ArrayLike) -> float:
    """Median silent gap (s) between consecutive IPUs inside the spans; NaN when none."""
    gaps = pause_gaps_s(track, spans)
    return median(gaps)
