"""The DSP of live events, for many streams at a time (in the live worker processes:
``service.live_pool``). Pure functions of small picklable inputs.

A stream's :class:`LiveWork` (``service.live.LiveAnalyzer.snapshot``) holds the audio not
yet analysed and the stage-1 tracks its window already has; :func:`measure_windows` runs
the batch analysis's own DSP functions: stage 1 (``dsp.pipeline.channel_tracks``) on the
new audio only (pitch candidates where the window has speech), then on the window's tracks
``dsp.activity`` (speech of each party, bleed removed), the pitch path on the speech
frames (one search for the whole batch: :func:`joint_f0_path`), loudness and ``dsp.rate``
syllable nuclei; what it found (:class:`WindowMeasures`) goes back to the stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dsp.activity import detect_speech, frame_features
from dsp.frames import HOP_S, hop_samples
from dsp.params import AnalysisParams
from dsp.pipeline import (
    TRACK_FEATURES,
    TRACK_ROWS,
    channel_tracks,
    context_samples,
    stack_tracks,
)
from dsp.pitch import PitchCandidates, f0_paths
from dsp.rate import syllable_nuclei

#: Fewest voiced speech frames for a recent pitch, speech frames for a loudness, and
#: seconds of speech for a speaking rate, in the window.
MIN_VOICED_FRAMES = 20
MIN_SPEECH_FRAMES = 30
MIN_RATE_SPEECH_S = 2.0


def _median(values: npt.NDArray[Any]) -> float | None:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def round_or_none(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


# The window keeps each channel's stage-1 tracks as dsp.pipeline.stack_tracks rows.
_LEVEL, _FEATURES, _F0, _STRENGTH, _SYLLABLE, _SONORITY = TRACK_ROWS
#: The live window's pitch range and the rest of stage 1's settings: the batch defaults.
PARAMS = AnalysisParams()


@dataclass(frozen=True)
class LiveWork:
    """What the DSP needs for one stream's event (:meth:`LiveAnalyzer.snapshot`): the audio
    of the frames not yet final, with context before them, and the window's final tracks.

    Small and picklable: it goes to a worker process."""

    sample_rate_hz: int
    end: int  # samples per channel fed when it was taken
    window_samples: int  # audio the window spans (at most the window's length)
    first_frame: int  # stream frame of the first frame to compute
    audio: npt.NDArray[np.int16]  # (2, n) from sample first_frame * hop - left
    left: int  # samples of context before the first frame to compute (a multiple of hop)
    tracks: npt.NDArray[np.float32]  # (2, N_TRACK_ROWS, n): the window's final frames


@dataclass(frozen=True)
class WindowMeasures:
    """What the DSP found in one stream's window: the input of :meth:`LiveAnalyzer.update`.

    Small and picklable: it comes back from a worker process."""

    end: int
    n_samples: int
    speech: npt.NDArray[np.bool_]  # (2, frames of the window)
    measures: tuple[dict[str, float | None], dict[str, float | None]]
    first_frame: int  # stream frame of final_tracks' first frame
    final_tracks: npt.NDArray[np.float32]  # (2, N_TRACK_ROWS, n): frames now final, to keep


def window_tracks(
    work: LiveWork,
) -> tuple[npt.NDArray[np.float32], int, npt.NDArray[np.bool_]]:
    """The window's tracks (final ones, then the new frames), how many of the new frames
    are final (their right context has arrived; the others are computed again next time)
    and the window's speech (2, frames). Pitch candidates, the costly part, are computed on
    the new frames this window calls speech: the only ones its pitch path reads."""
    sr = work.sample_rate_hz
    hop = hop_samples(sr)
    y = work.audio.astype(np.float32) / np.float32(32768.0)
    first = work.left // hop
    n_old = work.tracks.shape[2]
    if y.shape[1] <= work.left:
        tracks = work.tracks
        speech = np.zeros((2, 0), dtype=bool)
    else:
        feats = [frame_features(y[c], sr, names=TRACK_FEATURES) for c in (0, 1)]
        window_feats = np.concatenate(
            [work.tracks[:, _FEATURES], np.stack([f[:, first:] for f in feats])], axis=2
        )
        pitch_frames = np.zeros((2, feats[0].shape[1]), dtype=bool)
        if window_feats.shape[2] < 10:  # under 0.1 s: nothing to measure yet
            speech = np.zeros((2, 0), dtype=bool)
        else:
            speech = detect_speech(window_feats).speech
            pitch_frames[:, first:] = speech[:, n_old:]
        new = np.stack(
            [
                stack_tracks(
                    channel_tracks(
                        y[c], sr, PARAMS, features=feats[c], pitch_frames=pitch_frames[c]
                    )
                )[:, first:]
                for c in (0, 1)
            ]
        )
        tracks = np.concatenate([work.tracks, new], axis=2)
    last_final = (work.end - context_samples(sr)) // hop  # stream frame
    n_final = int(np.clip(last_final - work.first_frame + 1, 0, tracks.shape[2] - n_old))
    return tracks, n_final, speech


def measure_windows(works: Sequence[LiveWork]) -> list[WindowMeasures]:
    """The DSP of live events for many streams: each window's new frames through stage 1
    (``dsp.pipeline.channel_tracks``, the batch analysis's own), speech of each party, the
    pitch path of every window's speech frames in ONE search per sample rate
    (:func:`joint_f0_path`), then loudness and speaking rate. Pure: runs in a worker process,
    a batch of streams at a time."""
    prepared = [(work, *window_tracks(work)) for work in works]
    f0s: list[list[npt.NDArray[np.float64]]] = [[] for _ in prepared]
    for sr in sorted({w.sample_rate_hz for w, *_ in prepared}):
        group = [i for i, (w, *_) in enumerate(prepared) if w.sample_rate_hz == sr]
        paths = joint_f0_path(
            [(_candidates(prepared[i][1][c]), prepared[i][3][c]) for i in group for c in (0, 1)]
        )
        for k, i in enumerate(group):
            f0s[i] = paths[2 * k : 2 * k + 2]
    out = []
    for i, (work, tracks, n_final, speech) in enumerate(prepared):
        n_old = work.tracks.shape[2]
        out.append(
            WindowMeasures(
                end=work.end,
                n_samples=work.window_samples,
                speech=speech,
                measures=(
                    _measures(tracks[0], speech[0], f0s[i][0]),
                    _measures(tracks[1], speech[1], f0s[i][1]),
                ),
                first_frame=work.first_frame,
                final_tracks=tracks[:, :, n_old : n_old + n_final].copy(),
            )
        )
    return out


def _candidates(rows: npt.NDArray[np.float32]) -> PitchCandidates:
    return PitchCandidates.from_strengths(rows[_F0].T, rows[_STRENGTH].T)


def joint_f0_path(
    signals: Sequence[tuple[PitchCandidates, npt.NDArray[np.bool_]]],
) -> list[npt.NDArray[np.float64]]:
    """f0 (Hz, NaN unvoiced) of each signal's ``mask`` frames, all in ONE path search
    (``dsp.pitch.f0_paths``): a search of many signals costs little more than one of a
    single signal, and each signal's f0 is the one its own search gives."""
    tracks = f0_paths(
        [cands.frames(0, mask.size) for cands, mask in signals],
        frame_masks=[mask for _, mask in signals],
        fmin_hz=PARAMS.fmin_hz,
        fmax_hz=PARAMS.fmax_hz,
    )
    return [track.f0_hz.astype(np.float64) for track in tracks]


def _measures(
    rows: npt.NDArray[np.float32],
    speech: npt.NDArray[np.bool_],
    f0: npt.NDArray[np.float64],
) -> dict[str, float | None]:
    out: dict[str, float | None] = {"pitch_hz": None, "loudness_db": None, "speaking_rate": None}
    speech_frames = int(speech.sum())
    if speech_frames < MIN_SPEECH_FRAMES:
        return out
    n = speech.size
    level = rows[_LEVEL][0, :n]
    out["loudness_db"] = round_or_none(_median(level[speech].astype(np.float64)), 1)
    voiced = np.isfinite(f0) & speech
    if int(voiced.sum()) >= MIN_VOICED_FRAMES:
        out["pitch_hz"] = round_or_none(_median(f0[voiced]), 1)
    speech_s = speech_frames * HOP_S
    if speech_s >= MIN_RATE_SPEECH_S:
        nuclei = syllable_nuclei(
            rows[_SYLLABLE][0, :n],
            voiced=np.isfinite(f0),
            speech=speech,
            sonority=rows[_SONORITY][0, :n],
        )
        out["speaking_rate"] = round_or_none(len(nuclei) / speech_s, 2)
    return out
