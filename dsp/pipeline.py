"""The analysis recipe: decoded blocks -> frame tracks -> activity -> features -> windows.

Two stages keep memory bounded on long calls:

1. **Frame tracks, block by block.** The decoder streams blocks of a minute; each block is
   analysed with a little context on both sides and yields per-frame tracks (level, activity
   features, f0, syllable intensity) on the shared 10 ms clock. Audio is dropped as soon as
   its block is done, so memory follows the (small) tracks, not the audio.
2. **Decisions on tracks, whole call.** Speech activity (which needs call-wide statistics
   such as the noise floor and the bleed gain), IPUs, turns, syllable nuclei, per-speaker
   statistics, windows and the quality warnings work on the tracks of the whole call.

Channel 0 is the agent unless ``agent_channel=1``; everything after stage 1 is in role order
(row 0 agent, row 1 customer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.fft

from dsp import activity, loudness, measures, pitch, rate, turns, windows
from dsp import mirroring as mirror_metrics
from dsp import verbal as verbal_metrics
from dsp.activity import SpeechActivity
from dsp.frames import HOP_S, frame_count, hop_samples
from dsp.io import AudioInfo, Source, iter_blocks
from dsp.params import AnalysisParams
from dsp.turns import TurnTaking

FloatArray = npt.NDArray[np.float64]
ROLES = ("agent", "customer")
# What moved in each version: CHANGELOG.md
ANALYSIS_VERSION = "0.8.0"

# Seconds of audio added on each side of a block so frame-local features see whole windows.
CONTEXT_S = 0.2
CLIP_LEVEL = 0.999
# A header declaring more than this is not trusted to size the tracks (they grow instead).
MAX_EXPECTED_S = 24 * 3600.0
# Frames per further segment of the stage-1 tracks (10 minutes) when the length is not known.
_SEGMENT_FRAMES = 60_000


@dataclass(frozen=True)
class QualityWarning:
    """A problem with the recording, or a limit of what it can show, that does not stop the
    analysis (``code`` is stable)."""

    code: str
    message: str


# The activity features stage 1 keeps: detect_speech reads only the speech-band energy.
TRACK_FEATURES = ("band_db",)


@dataclass(frozen=True)
class FrameTracks:
    """Per-frame tracks of both channels (channel order, not role order), float32."""

    level_db: npt.NDArray[np.float32]  # (2, T)
    activity_features: npt.NDArray[np.float32]  # (2, F, T), rows TRACK_FEATURES
    f0_candidates_hz: npt.NDArray[np.float32]  # (2, K, T) pitch candidates, NaN where none
    f0_strength: npt.NDArray[np.float32]  # (2, K, T) their NCCF heights, 0 where none
    syllable_db: npt.NDArray[np.float32]  # (2, T)
    sonority_db: npt.NDArray[np.float32]  # (2, T) dsp.rate.sonority_db

    @property
    def periodicity(self) -> npt.NDArray[np.float32]:
        """(2, T) highest NCCF of each frame in [0, 1] (0 where not analysed), made on
        demand from the strengths (:meth:`dsp.pitch.PitchCandidates.from_strengths`)."""
        return np.stack([self.pitch_candidates(c).periodicity for c in (0, 1)])

    def pitch_candidates(self, channel: int) -> pitch.PitchCandidates:
        """One channel's f0 candidates (the path through them is chosen per speaker)."""
        return pitch.PitchCandidates.from_strengths(
            self.f0_candidates_hz[channel].T, self.f0_strength[channel].T
        )


# Hann-windowed segments of this many samples estimate the share of energy above 4 kHz
# (float32; a whole-block float64 FFT gives the same answer at ~30x the cost: 0.16 s per
# minute of 16 kHz audio).
SPECTRUM_SEGMENT = 4096


@dataclass
class QualityTally:
    """Sample-level quality counters gathered block by block."""

    samples: int = 0
    clipped: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(2, dtype=np.int64))
    max_abs_diff: float = 0.0
    cross: float = 0.0
    power: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    spectrum_total: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    spectrum_above_4khz: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))

    def add(self, block: npt.NDArray[np.float32], sample_rate_hz: int) -> None:
        if block.shape[1] == 0:
            return
        self.samples += block.shape[1]
        self.clipped += np.count_nonzero(np.abs(block) >= CLIP_LEVEL, axis=1)
        self.max_abs_diff = max(self.max_abs_diff, float(np.max(np.abs(block[0] - block[1]))))
        b64 = block.astype(np.float64)
        # einsum, not BLAS dot: OpenBLAS wakes its thread pool for long vectors, which on a
        # busy machine cost 10-30 ms per block (1.8 s per hour of audio) in profiles
        self.cross += float(np.einsum("i,i->", b64[0], b64[1]))
        self.power += np.einsum("ij,ij->i", b64, b64)
        if sample_rate_hz >= 16000:
            self._add_spectrum(block, sample_rate_hz)

    def merge(self, other: QualityTally) -> None:
        """Add the counts of ``other``, a tally of the blocks that follow (the same sums as
        adding those blocks here)."""
        self.samples += other.samples
        self.clipped += other.clipped
        self.max_abs_diff = max(self.max_abs_diff, other.max_abs_diff)
        self.cross += other.cross
        self.power += other.power
        self.spectrum_total += other.spectrum_total
        self.spectrum_above_4khz += other.spectrum_above_4khz

    def _add_spectrum(self, block: npt.NDArray[np.float32], sample_rate_hz: int) -> None:
        n_seg = block.shape[1] // SPECTRUM_SEGMENT
        if n_seg == 0:
            return
        segments = block[:, : n_seg * SPECTRUM_SEGMENT].reshape(2, n_seg, SPECTRUM_SEGMENT)
        window = np.hanning(SPECTRUM_SEGMENT).astype(np.float32)
        power = np.abs(scipy.fft.rfft(segments * window, axis=2)) ** 2
        spectrum = power.sum(axis=1, dtype=np.float64)
        freqs = np.fft.rfftfreq(SPECTRUM_SEGMENT, 1.0 / sample_rate_hz)
        self.spectrum_total += spectrum.sum(axis=1)
        self.spectrum_above_4khz += spectrum[:, freqs >= 4000.0].sum(axis=1)


# detect_speech settings shared by stage 1 (which skips pitch where they rule speech out)
# and stage 2 (which decides)
ACTIVITY_FLOOR = {"snr_db": 10.0, "noise_percentile": 5.0, "noise_block_s": 10.0}


def channel_tracks(
    y: npt.NDArray[np.float32],
    sample_rate_hz: int,
    params: AnalysisParams,
    *,
    kept: tuple[int, int] | None = None,
    first_call_frame: int = 0,
    features: npt.NDArray[np.float32] | None = None,
    pitch_frames: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.float32], ...]:
    """One channel's stage-1 tracks of a padded block, in :class:`FrameTracks` field order
    (shapes: :func:`track_shapes`); ``kept`` = (first, count) of the frames the call keeps
    (call frame ``first_call_frame`` onwards): pitch is skipped elsewhere. Frame-local with
    ``CONTEXT_S`` of audio around a frame: the live window computes them a second at a time.
    ``features``: the block's activity features if already computed; ``pitch_frames``:
    only these frames may get f0 candidates (the live window's speech)."""
    level = loudness.level_db(y, sample_rate_hz)
    feats = (
        activity.frame_features(y, sample_rate_hz, names=TRACK_FEATURES)
        if features is None
        else features
    )
    # Pitch costs the most: skip frames far below this block's loud frames (cannot be speech),
    # frames that are context only, and frames too close to the noise floor for
    # detect_speech to call them speech (a superset of its speech: same paths).
    gate = level > max(float(np.percentile(level, 95)) - 50.0, -75.0)
    if kept is not None:
        first, count = kept
        possible = np.zeros_like(gate)
        possible[first : first + count] = activity.speech_possible(
            feats[TRACK_FEATURES.index("band_db"), first : first + count],
            first_frame=first_call_frame,
            **ACTIVITY_FLOOR,
        )
        gate &= possible
    if pitch_frames is not None:
        gate &= pitch_frames
    cands = pitch.f0_candidates(
        y, sample_rate_hz, fmin_hz=params.fmin_hz, fmax_hz=params.fmax_hz, frame_mask=gate
    )
    syllable = rate.syllable_intensity_db(y, sample_rate_hz)
    sonority = rate.sonority_db(y, sample_rate_hz)
    return level, feats, cands.freq_hz.T, cands.strength.T, syllable, sonority


def context_samples(sample_rate_hz: int) -> int:
    """Samples of audio on each side of a block (``CONTEXT_S`` on the frame clock)."""
    return int(round(CONTEXT_S / HOP_S)) * hop_samples(sample_rate_hz)


def _with_context(
    blocks: Iterable[npt.NDArray[np.float32]], context: int
) -> Iterator[tuple[npt.NDArray[np.float32], int, int]]:
    """Yield (padded block, samples of left context, samples of the block itself)."""
    previous_tail: npt.NDArray[np.float32] | None = None
    current: npt.NDArray[np.float32] | None = None
    for block in blocks:
        if current is not None:
            left = previous_tail if previous_tail is not None else current[:, :0]
            yield (
                np.concatenate([left, current, block[:, :context]], axis=1),
                left.shape[1],
                current.shape[1],
            )
            previous_tail = current[:, -context:]
        current = block
    if current is not None:
        left = previous_tail if previous_tail is not None else current[:, :0]
        yield np.concatenate([left, current], axis=1), left.shape[1], current.shape[1]


#: Stage 1 of a call found without decoding it (a live stream's blocks computed ahead):
#: given the call's header, its tracks and quality tally, or None (then it is computed).
KeptStage1 = Callable[[AudioInfo], tuple[FrameTracks, QualityTally] | None]


def block_tracks(
    padded: npt.NDArray[np.float32],
    sample_rate_hz: int,
    params: AnalysisParams,
    *,
    first: int,
    n_keep: int,
    call_frame: int,
) -> list[tuple[npt.NDArray[np.float32], ...]]:
    """Both channels' stage-1 tracks of a padded block's kept frames ``first .. first +
    n_keep - 1`` (call frames from ``call_frame``): what :func:`frame_tracks` keeps of it."""
    return [
        tuple(
            np.ascontiguousarray(t[..., first : first + n_keep])
            for t in channel_tracks(
                padded[c], sample_rate_hz, params, kept=(first, n_keep), first_call_frame=call_frame
            )
        )
        for c in (0, 1)
    ]


def track_shapes() -> list[tuple[int, ...]]:
    """Shapes without the time axis of :func:`channel_tracks`' outputs, in FrameTracks field
    order (level, activity features, f0 candidates, strengths, syllable, sonority)."""
    k = pitch._N_CANDIDATES
    return [(), (len(TRACK_FEATURES),), (k,), (k,), (), ()]


def _row_slices() -> list[slice]:
    sizes = [int(np.prod(shape)) for shape in track_shapes()]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    return [slice(starts[i], starts[i + 1]) for i in range(len(sizes))]


#: Where each of :func:`channel_tracks`' outputs lies in :func:`stack_tracks`' rows (level,
#: activity features, f0 candidates, strengths, syllable, sonority), and how many rows.
TRACK_ROWS = _row_slices()
N_TRACK_ROWS = TRACK_ROWS[-1].stop


def stack_tracks(channel: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """One channel's stage-1 tracks as one (N_TRACK_ROWS, T) array (rows: TRACK_ROWS)."""
    return np.concatenate([t.reshape(-1, t.shape[-1]) for t in channel])


def unstack_tracks(rows: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], ...]:
    """The inverse of :func:`stack_tracks` (views)."""
    return tuple(
        rows[part].reshape(*shape, rows.shape[-1]) if shape else rows[part][0]
        for part, shape in zip(TRACK_ROWS, track_shapes(), strict=True)
    )


class _TrackStore:
    """The (2, ..., T) float32 tracks of stage 1, filled block by block in place.

    Segments of preallocated tracks: the first holds ``expected_frames`` when that is known
    (then, with a right header, it is the result: no copy), further ones ``_SEGMENT_FRAMES``
    each. Several segments, or one not filled, are joined at the end one track at a time
    (peak: the tracks plus one track, as joining per-block pieces used to be).
    """

    def __init__(self, expected_frames: int | None) -> None:
        self.segments: list[list[npt.NDArray[np.float32]]] = []
        self.used: list[int] = []
        if expected_frames is not None and expected_frames > 0:
            self._add_segment(expected_frames)

    def _add_segment(self, capacity: int) -> None:
        self.segments.append(
            [np.empty((2, *shape, capacity), dtype=np.float32) for shape in track_shapes()]
        )
        self.used.append(0)

    def put(
        self, per_channel: Sequence[tuple[npt.NDArray[np.float32], ...]], first: int, n: int
    ) -> None:
        """Append frames ``first .. first + n - 1`` of both channels' block tracks."""
        done = 0
        while done < n:
            if not self.segments or self.used[-1] == self.segments[-1][0].shape[-1]:
                self._add_segment(max(_SEGMENT_FRAMES, n - done))
            at, room = self.used[-1], self.segments[-1][0].shape[-1] - self.used[-1]
            take = min(room, n - done)
            lo = first + done
            for i, out in enumerate(self.segments[-1]):
                for c in (0, 1):
                    out[c, ..., at : at + take] = per_channel[c][i][..., lo : lo + take]
            self.used[-1] += take
            done += take

    def tracks(self) -> list[npt.NDArray[np.float32]]:
        """The filled tracks (the store gives up its segments)."""
        segments, used = self.segments, self.used
        self.segments, self.used = [], []
        if len(segments) == 1 and used[0] == segments[0][0].shape[-1]:
            return segments[0]
        out = []
        for i, shape in enumerate(track_shapes()):
            pieces = [seg[i][..., :u] for seg, u in zip(segments, used, strict=True)]
            out.append(
                np.concatenate(pieces, axis=-1)
                if pieces
                else np.empty((2, *shape, 0), dtype=np.float32)
            )
            del pieces
            for seg in segments:  # this track's segments are no longer needed
                seg[i] = np.empty(0, dtype=np.float32)
        return out


def stage1_workers() -> int:
    """Default threads for stage 1: one per channel where there are two cores to run them.

    Callers that already keep every core busy (a process pool) pass ``workers=1``.
    """
    import os

    return 2 if (os.cpu_count() or 1) >= 2 else 1


def frame_tracks(
    blocks: Iterable[npt.NDArray[np.float32]],
    sample_rate_hz: int,
    params: AnalysisParams,
    *,
    on_block: Callable[[float], None] | None = None,
    workers: int | None = None,
    expected_samples: int | None = None,
) -> tuple[FrameTracks, QualityTally]:
    """Stage 1: per-frame tracks of both channels, computed block by block.

    ``expected_samples`` (samples per channel the blocks will carry, e.g. from the header's
    duration) lets the tracks be allocated once at their final size and each block written
    into them: no per-block pieces to join at the end (which held the tracks twice). A
    wrong or missing value only costs copies (the tracks grow, or are trimmed, as needed);
    the tracks are the same.

    With ``workers=2`` (the default on two or more cores) the channels run on two threads
    (numpy and scipy release the GIL in their loops) while the main thread decodes the next
    block and keeps the quality tally; the tracks are the same as with ``workers=1``.
    """
    hop = hop_samples(sample_rate_hz)
    context = context_samples(sample_rate_hz)
    expected = None
    if expected_samples is not None and 0 <= expected_samples <= MAX_EXPECTED_S * sample_rate_hz:
        expected = frame_count(expected_samples, sample_rate_hz)
    store = _TrackStore(expected)
    tally = QualityTally()
    start = 0
    n_workers = stage1_workers() if workers is None else max(1, int(workers))
    pool = None
    if n_workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mirrorline-stage1")

    in_flight: tuple[list[Any], int, int, int] | None = None
    frames_done = 0  # call frames kept so far (the next block's first kept frame)

    def finish(futures: list[Any], first: int, n_keep: int, length: int) -> None:
        nonlocal start
        store.put([f.result() for f in futures], first, n_keep)
        start += length
        if on_block is not None:
            on_block(start / sample_rate_hz)

    try:
        for padded, left, length in _with_context(blocks, context):
            first = left // hop
            is_last = padded.shape[1] == left + length
            n_keep = frame_count(length, sample_rate_hz) if is_last else length // hop
            kept, call_frame = (first, n_keep), frames_done
            frames_done += n_keep
            if pool is None:
                tally.add(padded[:, left : left + length], sample_rate_hz)
                per_channel = [
                    channel_tracks(
                        padded[c], sample_rate_hz, params, kept=kept, first_call_frame=call_frame
                    )
                    for c in (0, 1)
                ]
                store.put(per_channel, first, n_keep)
                start += length
                if on_block is not None:
                    on_block(start / sample_rate_hz)
                continue
            # One block in flight: the workers analyse it while this thread tallies it and
            # decodes the next one.
            futures = [
                pool.submit(
                    channel_tracks,
                    padded[c],
                    sample_rate_hz,
                    params,
                    kept=kept,
                    first_call_frame=call_frame,
                )
                for c in (0, 1)
            ]
            if in_flight is not None:
                finish(*in_flight)
            tally.add(padded[:, left : left + length], sample_rate_hz)
            in_flight = (futures, first, n_keep, length)
        if in_flight is not None:
            finish(*in_flight)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    tracks = FrameTracks(*store.tracks())
    return tracks, tally


@dataclass(frozen=True)
class SpeakerAnalysis:
    """One speaker's measured speech: segments, per-frame f0/level, nuclei, stats."""

    speech: npt.NDArray[np.bool_]
    ipus_s: FloatArray
    # Turn-level speech segments: IPUs joined across pauses inside the speaker's own turn.
    segments_s: FloatArray
    turns_s: FloatArray
    f0_hz: FloatArray
    level_db: FloatArray
    nuclei_s: FloatArray
    rate: measures.Rates
    pitch: dict[str, float]
    loudness: dict[str, float]
    median_pause_s: float
    units: mirror_metrics.SpeakerUnits
    # the tracks every measure reads, and the spans the call-level values are measured over
    track: measures.SpeakerTrack
    speaking_spans_s: FloatArray


@dataclass(frozen=True)
class AnalysisResult:
    """Everything the report is made of (role order: agent, customer)."""

    info: AudioInfo
    duration_s: float
    params: AnalysisParams
    speakers: dict[str, SpeakerAnalysis]
    turn_taking: TurnTaking
    windows: windows.Windows
    warnings: list[QualityWarning]
    activity: SpeechActivity
    mirroring: mirror_metrics.MirroringResult | None = None
    verbal: verbal_metrics.VerbalResult | None = None

    def window_series(self) -> mirror_metrics.WindowSeries:
        return mirror_metrics.WindowSeries(
            starts_s=self.windows.starts_s,
            window_s=self.windows.window_s,
            hop_s=self.windows.hop_s,
            values=self.windows.values,
            coverage=self.windows.speech_s,
        )

    def as_sham(self) -> mirror_metrics.ShamCall:
        """This call's mirroring inputs: its own (:func:`measure_mirroring`) and, for other
        calls of a batch, a sham partner source."""
        return mirror_metrics.ShamCall(
            agent=self.speakers["agent"].units,
            customer=self.speakers["customer"].units,
            windows=self.window_series(),
        )


#: Least voiced speech (s) for the call's pitch statistics: under half a second, no stable
#: estimate. Per IPU it is 0.1 s (:data:`MIN_VOICED_S_PER_IPU`), per window 1 s.
MIN_VOICED_S_PER_CALL = 0.5
#: Least phonation (s) for a rate: 1 s for the call, 0.5 s for a turn (a turn's rate is a
#: mirroring input, and most answers are short).
MIN_PHONATION_S_PER_CALL = 1.0
MIN_PHONATION_S_PER_TURN = 0.5
MIN_VOICED_S_PER_IPU = 0.1  # 100 ms of voicing for an IPU pitch value


def _pitch_stats(track: measures.SpeakerTrack, spans_s: FloatArray) -> dict[str, float]:
    """The call's pitch: level and spread as :mod:`dsp.measures` defines them, and the 10th
    and 90th percentiles of the same voiced frames."""
    voiced = measures.voiced_st(track, spans_s)
    nan = float("nan")
    if voiced.size == 0 or voiced.size * HOP_S < MIN_VOICED_S_PER_CALL - 1e-9:
        return dict.fromkeys(
            ("median_hz", "median_st", "p10_hz", "p90_hz", "range_st", "sd_st"), nan
        )
    level_st = measures.pitch_level_st(track, spans_s, min_voiced_s=MIN_VOICED_S_PER_CALL)
    p10_st, p90_st = np.percentile(voiced, [10, 90])
    return {
        "median_hz": float(pitch.st_to_hz(level_st)),
        "median_st": level_st,
        "p10_hz": float(pitch.st_to_hz(p10_st)),
        "p90_hz": float(pitch.st_to_hz(p90_st)),
        "range_st": float(p90_st - p10_st),
        "sd_st": measures.pitch_spread_st(track, spans_s, min_voiced_s=MIN_VOICED_S_PER_CALL),
    }


def _loudness_stats(track: measures.SpeakerTrack, spans_s: FloatArray) -> dict[str, float]:
    """The call's loudness (:func:`dsp.measures.loudness_db`) and the 90th percentile of the
    same speech frames' levels."""
    levels = measures.speech_level_db(track, spans_s)
    if levels.size < 10:
        return {"median_db": float("nan"), "p90_db": float("nan")}
    return {
        "median_db": measures.loudness_db(track, spans_s),
        "p90_db": float(np.percentile(levels, 90)),
    }


def _ipu_units(
    track: measures.SpeakerTrack,
    ipu_turn_index: npt.NDArray[np.int64],
    turn_segments_s: FloatArray,
    turn_latency_s: FloatArray,
) -> mirror_metrics.SpeakerUnits:
    """Per-IPU pitch and loudness, and per-turn rates and timing (pause inside the turn;
    ``turn_latency_s``, the gap before it), of one speaker for the mirroring step: every
    value from :mod:`dsp.measures` over that IPU or turn."""
    ipus_s = track.ipus_s
    k = len(ipus_s)
    pitch_level = np.full(k, np.nan)
    pitch_variability = np.full(k, np.nan)
    level = np.full(k, np.nan)
    for i, span in enumerate(ipus_s):
        one = track.frames(span.reshape(1, 2))
        pitch_level[i] = measures.pitch_level_st(track, one, min_voiced_s=MIN_VOICED_S_PER_IPU)
        pitch_variability[i] = measures.pitch_spread_st(
            track, one, min_voiced_s=MIN_VOICED_S_PER_IPU
        )
        level[i] = measures.loudness_db(track, one, min_speech_s=HOP_S)
    # Rates are too coarse per IPU (one syllable is 25% of a 1 s IPU): measure them per turn.
    labels = np.unique(ipu_turn_index[ipu_turn_index >= 0])
    turn_segments_s = np.asarray(turn_segments_s, dtype=np.float64).reshape(-1, 2)
    per_turn: dict[str, FloatArray] = {
        name: np.full(len(labels), np.nan)
        for name in ("speaking_rate", "articulation_rate", "pause")
    }
    for j, label in enumerate(labels):
        if label >= len(turn_segments_s):
            continue
        turn = track.frames(turn_segments_s[label].reshape(1, 2))
        r = measures.rates(track, turn, min_phonation_s=MIN_PHONATION_S_PER_TURN)
        per_turn["speaking_rate"][j] = r.speaking_rate_syl_per_s
        per_turn["articulation_rate"][j] = r.articulation_rate_syl_per_s
        per_turn["pause"][j] = measures.pause_s(track, turn)
    known = labels < len(turn_segments_s)
    latency = np.full(len(labels), np.nan)
    latency[known] = np.asarray(turn_latency_s, dtype=np.float64)[labels[known]]
    return mirror_metrics.SpeakerUnits(
        start_s=ipus_s[:, 0].copy(),
        end_s=ipus_s[:, 1].copy(),
        turn_index=np.asarray(ipu_turn_index, dtype=np.int64),
        features={
            "pitch_level": pitch_level,
            "pitch_variability": pitch_variability,
            "loudness": level,
        },
        turn_features={**per_turn, "latency": latency},
        turn_labels=labels.astype(np.int64),
    )


#: Warning code of a call too short to show following weaker than a large effect.
LOW_POWER_WARNING = "mirroring.low_power"


def with_mirroring(
    result: AnalysisResult, *, shams: Sequence[AnalysisResult] = ()
) -> AnalysisResult:
    """``result`` with its mirroring statistics, other calls of a batch as sham partners,
    and the ``mirroring.low_power`` warning when the call is too short (see
    :func:`mirroring_warnings`)."""
    measured = measure_mirroring(
        result.as_sham(), shams=[other.as_sham() for other in shams if other is not result]
    )
    kept = [w for w in result.warnings if w.code != LOW_POWER_WARNING]  # measured again
    return replace(result, mirroring=measured, warnings=kept + mirroring_warnings(measured))


def mirroring_warnings(measured: mirror_metrics.MirroringResult | None) -> list[QualityWarning]:
    """``mirroring.low_power`` when the call can only show following stronger than a large
    effect: its ``mirrored: false`` must not be read as "no mirroring"."""
    if measured is None:
        return []
    needed = measured.detectable_r
    if needed is None or needed <= mirror_metrics.LARGE_EFFECT_R:
        return []
    return [
        QualityWarning(
            LOW_POWER_WARNING,
            f"the call has {measured.n_exchanges} exchanges: following shows as "
            f"significant only when stronger than r = {needed:.2f} (0.5 is a large effect), "
            "so mirrored = false here means not shown, not absent; longer calls show weaker "
            "following",
        )
    ]


def measure_mirroring(
    call: mirror_metrics.ShamCall, *, shams: Sequence[mirror_metrics.ShamCall] = ()
) -> mirror_metrics.MirroringResult:
    """Mirroring of one call from its mirroring inputs (``AnalysisResult.as_sham()``: IPU
    values and window series), other calls as sham partners; a batch keeps only these."""
    return mirror_metrics.analyze_mirroring(call.agent, call.customer, call.windows, shams=shams)


#: Mean power per sample (full scale 1.0) below which a channel is digitally silent:
#: -100 dBFS, under the dither of 16-bit audio.
DIGITAL_SILENCE_POWER = 1e-10


def _warnings(
    tally: QualityTally,
    info: AudioInfo,
    speech: npt.NDArray[np.bool_],
    act: SpeechActivity,
    agent_channel: int,
) -> list[QualityWarning]:
    out: list[QualityWarning] = []
    n = max(tally.samples, 1)
    channel_names = {agent_channel: "agent", 1 - agent_channel: "customer"}
    # A channel this quiet holds no signal at all (digital silence): two of them are not
    # "the same signal twice", and one is not the other party's bleed.
    digital_silence = tally.power / n < DIGITAL_SILENCE_POWER
    identical = not digital_silence.any() and (
        tally.max_abs_diff < 1e-4 or tally.cross / np.sqrt(tally.power.prod()) > 0.995
    )
    if identical:
        # One warning says it all: each channel's "silence" and "bleed" follow from it.
        out.append(
            QualityWarning(
                "channels.identical",
                "both channels carry the same signal (fake stereo): turn-taking and mirroring "
                "need one party per channel",
            )
        )
    for c in (0, 1):
        role_row = 0 if c == agent_channel else 1
        if digital_silence[c]:
            out.append(
                QualityWarning(
                    "channel.silent",
                    f"channel {c} ({channel_names[c]}) is digitally silent (no signal at all)",
                )
            )
        elif not identical and speech[role_row].sum() * HOP_S < 1.0:
            out.append(
                QualityWarning(
                    "channel.silent",
                    f"channel {c} ({channel_names[c]}) has less than 1 s of speech",
                )
            )
        clipped = tally.clipped[c] / n
        if clipped > 0.001:
            out.append(
                QualityWarning(
                    "audio.clipping",
                    f"channel {c} ({channel_names[c]}) is clipped on {100 * clipped:.2f}% of "
                    "samples: pitch and loudness may be distorted",
                )
            )
        bleed = float(act.bleed_db[c]) if np.isfinite(act.bleed_db[c]) else None
        if bleed is not None and bleed < 10.0 and not identical:
            out.append(
                QualityWarning(
                    "channel.heavy_bleed",
                    f"the other party is only {bleed:.0f} dB quieter on channel {c} "
                    f"({channel_names[c]}): speech detection there is less certain",
                )
            )
    if info.sample_rate_hz >= 16000 and tally.spectrum_total.sum() > 0:
        high_share = tally.spectrum_above_4khz.sum() / tally.spectrum_total.sum()
        if high_share < 1e-4:
            out.append(
                QualityWarning(
                    "audio.narrowband",
                    f"the file is {info.native_rate_hz} Hz but carries almost nothing above "
                    "4 kHz (upsampled telephone audio): results are those of a phone line",
                )
            )
    if info.ends_cleanly is False:
        out.append(
            QualityWarning(
                "audio.truncated",
                f"the {info.container} stream ends without its end-of-stream mark: the file "
                "was probably cut short, and this report covers only the audio received; "
                "re-export or re-upload the whole recording",
            )
        )
    if info.sample_rate_hz < 16000:
        out.append(
            QualityWarning(
                "audio.narrowband",
                f"{info.native_rate_hz} Hz audio (telephone band): analysed natively, "
                "nothing above 4 kHz",
            )
        )
    return out


def _call_windows(
    speakers: dict[str, SpeakerAnalysis], duration_s: float, params: AnalysisParams
) -> windows.Windows:
    """Both speakers' window series on one clock."""
    starts = windows.window_starts_s(duration_s, window_s=params.window_s, hop_s=params.hop_s)
    speech_rows = []
    value_rows: dict[str, list[FloatArray]] = {name: [] for name in windows.WINDOW_FEATURES}
    for role in ROLES:
        speaker = speakers[role]
        speech_s, values = windows.speaker_windows(
            starts,
            window_s=params.window_s,
            track=speaker.track,
            spans_s=speaker.speaking_spans_s,
            min_speech_s=min(params.min_window_speech_s, params.window_s / 4),
        )
        speech_rows.append(speech_s)
        for name in windows.WINDOW_FEATURES:
            value_rows[name].append(values[name])
    return windows.Windows(
        starts_s=starts,
        ends_s=np.minimum(starts + params.window_s, duration_s),
        window_s=params.window_s,
        hop_s=params.hop_s,
        speech_s=np.vstack(speech_rows),
        values={name: np.vstack(rows) for name, rows in value_rows.items()},
    )


def with_windows(result: AnalysisResult, params: AnalysisParams) -> AnalysisResult:
    """``result`` re-windowed with other ``window_s``/``hop_s`` (mirroring is dropped)."""
    params = params.validate()
    return replace(
        result,
        params=params,
        windows=_call_windows(result.speakers, result.duration_s, params),
        mirroring=None,
    )


def _speaker(
    speech: npt.NDArray[np.bool_],
    ipus_s: FloatArray,
    per_speaker: turns.SpeakerTurns,
    *,
    segments_s: FloatArray,
    f0_track_hz: npt.NDArray[np.float32],
    level_track_db: npt.NDArray[np.float32],
    syllable_track_db: npt.NDArray[np.float32],
    sonority_track_db: npt.NDArray[np.float32],
) -> SpeakerAnalysis:
    """One speaker's features, from their channel's tracks and their speech: every value is
    a :mod:`dsp.measures` measure over the speaker's speaking spans (turns and the IPUs
    outside them)."""
    f0 = np.where(speech, f0_track_hz, np.nan).astype(np.float64)
    level = level_track_db.astype(np.float64)
    nuclei_frames = np.asarray(
        rate.syllable_nuclei(
            syllable_track_db, voiced=np.isfinite(f0), speech=speech, sonority=sonority_track_db
        ),
        dtype=np.int64,
    )
    turns_s = np.asarray(per_speaker.turn_segments, dtype=np.float64).reshape(-1, 2)
    ipu_turn_index = np.asarray(per_speaker.ipu_turn_index, dtype=np.int64)
    track = measures.SpeakerTrack.build(
        speech=speech,
        f0_st=pitch.hz_to_st(f0),
        level_db=level,
        nuclei_frames=nuclei_frames,
        ipus_s=ipus_s,
        phonation=rate.phonation_frames(syllable_track_db, speech),
    )
    spans_s = measures.speaking_spans_s(turns_s, ipus_s)
    return SpeakerAnalysis(
        speech=speech,
        ipus_s=ipus_s,
        segments_s=segments_s,
        turns_s=turns_s,
        f0_hz=f0,
        level_db=level,
        nuclei_s=track.nuclei_frames.astype(np.float64) * HOP_S,
        rate=measures.rates(track, spans_s, min_phonation_s=MIN_PHONATION_S_PER_CALL),
        pitch=_pitch_stats(track, spans_s),
        loudness=_loudness_stats(track, spans_s),
        median_pause_s=measures.pause_s(track, spans_s),
        units=_ipu_units(track, ipu_turn_index, turns_s, per_speaker.turn_latency_s),
        track=track,
        speaking_spans_s=spans_s,
    )


def speech_units(
    speech: npt.NDArray[np.bool_], params: AnalysisParams
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Both rows' IPUs and the report's turn-level segments (the IPUs joined across pauses
    under ``params.segment_join_s`` inside the row's own turn) from (2, T) speech masks."""
    ipus = [
        activity.ipus(speech[r], min_pause_s=params.min_pause_s, min_ipu_s=params.min_ipu_s)
        for r in (0, 1)
    ]
    segments = [
        turns.join_turn_pauses(ipus[r], ipus[1 - r], max_pause_s=params.segment_join_s)
        for r in (0, 1)
    ]
    return ipus, segments


def analyze_tracks(
    tracks: FrameTracks,
    info: AudioInfo,
    tally: QualityTally,
    params: AnalysisParams,
) -> AnalysisResult:
    """Stage 2: decisions on the whole call's tracks (role order from here on)."""
    order = [params.agent_channel, 1 - params.agent_channel]
    duration_s = tally.samples / info.sample_rate_hz
    act = activity.detect_speech(tracks.activity_features, **ACTIVITY_FLOOR)
    speech = act.speech[order]
    ipus, segments = speech_units(speech, params)
    taking = turns.turn_taking(
        ipus[0],
        ipus[1],
        duration_s=duration_s,
        backchannel_max_s=params.backchannel_max_s,
        silence_threshold_s=params.silence_threshold_s,
    )
    f0_paths = pitch.speaker_f0_paths(
        [tracks.pitch_candidates(channel) for channel in order],
        speeches=list(speech),
        fmin_hz=params.fmin_hz,
        fmax_hz=params.fmax_hz,
    )
    speakers = {
        role: _speaker(
            speech[row],
            ipus[row],
            taking.speakers[row],
            segments_s=segments[row],
            f0_track_hz=f0_paths[row].f0_hz,
            level_track_db=tracks.level_db[order[row]],
            syllable_track_db=tracks.syllable_db[order[row]],
            sonority_track_db=tracks.sonority_db[order[row]],
        )
        for row, role in enumerate(ROLES)
    }
    return AnalysisResult(
        info=info,
        duration_s=duration_s,
        params=params,
        speakers=speakers,
        turn_taking=taking,
        windows=_call_windows(speakers, duration_s, params),
        warnings=_warnings(tally, info, speech, act, params.agent_channel),
        activity=act,
    )


def analyze(
    source: Source,
    params: AnalysisParams | None = None,
    *,
    max_duration_s: float | None = None,
    on_progress: Callable[[float, float | None], None] | None = None,
    workers: int | None = None,
    mirror: bool = True,
    kept: KeptStage1 | None = None,
) -> AnalysisResult:
    """Analyse one stereo call: decode in blocks, build tracks, measure both speakers.

    ``on_progress(done_s, total_s)`` is called after each block (``total_s`` may be None
    when the container does not declare its duration). ``workers``: threads for the
    per-channel stage (default: 2 on two or more cores; same result either way).
    ``mirror=False`` skips the mirroring step (a batch adds it later with sham partners).
    ``kept(info)`` may give the call's stage 1 computed ahead (a live stream's): then the
    call is not decoded, only its header read.
    """
    params = (params or AnalysisParams()).validate()
    if params.verbal:
        verbal_metrics.require_recognizer()  # before the long part, not after it
    start_at = source.tell() if hasattr(source, "tell") else None
    info, blocks = iter_blocks(source, block_s=params.block_s, max_duration_s=max_duration_s)

    def report_block(done_s: float) -> None:
        if on_progress is not None:
            on_progress(done_s, info.declared_duration_s)

    declared = info.declared_duration_s
    found = None if kept is None else kept(info)
    if found is not None:
        blocks.close()  # not started: this lets the decoder go
        tracks, tally = found
        report_block(tally.samples / info.sample_rate_hz)
    else:
        tracks, tally = frame_tracks(
            blocks,
            info.sample_rate_hz,
            params,
            on_block=report_block,
            workers=workers,
            expected_samples=None
            if declared is None
            else int(round(declared * info.sample_rate_hz)),
        )
    result = analyze_tracks(tracks, info, tally, params)
    if params.verbal:
        if start_at is not None:
            source.seek(start_at)  # type: ignore[union-attr]
        result = with_verbal(result, source, max_duration_s=max_duration_s)
    return with_mirroring(result) if mirror else result


def with_verbal(
    result: AnalysisResult, source: Source, *, max_duration_s: float | None = None
) -> AnalysisResult:
    """``result`` with its verbal mirroring: the call decoded again and words recognised
    inside each speaker's speech segments (:mod:`dsp.verbal`)."""
    from dsp.verbal.recognize import recognize_channels, recognizer_info

    params = result.params
    order = [params.agent_channel, 1 - params.agent_channel]  # role row -> channel
    spans: list[FloatArray] = [np.zeros((0, 2)), np.zeros((0, 2))]
    for row, role in enumerate(ROLES):
        spans[order[row]] = result.speakers[role].segments_s
    words = recognize_channels(
        source,
        spans,
        block_s=params.block_s,
        duration_s=result.duration_s,
        max_duration_s=max_duration_s,
    )
    speakers = [result.speakers[role] for role in ROLES]
    measured = verbal_metrics.analyze_verbal(
        recognizer_info(),
        [words[order[row]] for row in (0, 1)],
        [s.turns_s for s in speakers],
        [s.f0_hz for s in speakers],
        speech_s=(
            float(np.sum(np.diff(speakers[0].segments_s, axis=1))),
            float(np.sum(np.diff(speakers[1].segments_s, axis=1))),
        ),
    )
    return replace(result, verbal=measured)


__all__ = [
    "ANALYSIS_VERSION",
    "ROLES",
    "AnalysisParams",
    "AnalysisResult",
    "FrameTracks",
    "KeptStage1",
    "SpeakerAnalysis",
    "analyze",
    "analyze_tracks",
    "block_tracks",
    "channel_tracks",
    "context_samples",
    "frame_tracks",
    "mirroring_warnings",
    "stack_tracks",
    "track_shapes",
    "unstack_tracks",
    "with_mirroring",
    "with_verbal",
    "with_windows",
]
