"""Fundamental frequency (f0) tracking on the 10 ms analysis clock, and semitone helpers.

The tracker is a vectorised normalised cross-correlation (NCCF) pitch tracker in the style of
Praat's ``To Pitch (cc)`` and RAPT, built for speed on hours of telephone audio:

1. The signal is low-passed and decimated to a 4 kHz analysis rate (everything that defines
   the period of a voice lives below 2 kHz), its DC removed, and centre-clipped at 40 % of
   the local peak (Sondhi 1968), which flattens the spectrum so that a dominant second
   harmonic (telephone band, fundamental filtered out) is not taken for the fundamental.
2. For every 10 ms frame the NCCF between a ~30 ms window and the same window delayed by
   each lag in ``[sr / fmax_hz, sr / fmin_hz]`` is computed with batched FFTs. The
   lagged products are computed once per 10 ms hop block and summed over the blocks of each
   window, so each hop costs two short FFTs and one inverse FFT.
3. The best few NCCF peaks of each frame (parabolically interpolated in lag and height) are
   the voiced candidates; one "unvoiced" candidate is added. A Viterbi search over the
   candidates (vectorised across overlapping 4 s chunks) picks a path that rewards high
   NCCF, slightly favours higher f0 (against sub-octave errors, as Praat's octave cost),
   and penalises octave jumps and voicing flips.

It works without the fundamental: at 8 kHz mu-law with the band cut below 300 Hz, the
harmonics still repeat with the same period. The 4 kHz lag grid with parabolic
interpolation costs a small bias at high f0 (pure tones: < 1 cent up to 250 Hz, 2.5 cents at
300 Hz, 3.5 cents at 450 Hz); PTDB-TUG median errors are 11-15 cents (``bench/pitch_ptdb.py``).

The two stages are separate functions: :func:`f0_candidates` is frame-local (run block by
block on a long call) and :func:`f0_path` searches the whole call's candidates. The
speaker-adaptive search :func:`speaker_f0_path` runs a first path on one speaker's speech,
takes its median f0, and runs a second path in which candidates more than half an octave
from that median lose 0.3 per octave beyond: octave errors (a dominant second harmonic on
the phone band, a weak fundamental at onsets) lose against the right candidate. Measured
(``python bench/pitch_ptdb.py``): PTDB M01 8 kHz phone GPE 1.7 -> 0.6 %, voicing false
alarms 3-15 % -> 2-10 %, Katie (ms-katiesteve) phone median 167 -> 158 Hz (truth ~158).

Costs (``python bench/pitch_ptdb.py``, one core here, 60 minutes of 8 kHz audio): about
1.1-1.2 s of CPU for the candidates and 0.2 s per path (1.5 s for candidates and the two
speaker-adaptive paths), proportionally less with masks; no numba, no JIT warm-up.

References
----------
M. M. Sondhi, "New methods of pitch extraction", IEEE Trans. Audio Electroacoust. 16(2),
1968 (centre clipping).
P. Boersma, "Accurate short-term analysis of the fundamental frequency and the
harmonics-to-noise ratio of a sampled sound", IFA Proceedings 17, 1993.
D. Talkin, "A robust algorithm for pitch tracking (RAPT)", in Speech Coding and Synthesis,
1995.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.signal

from dsp.errors import ParameterError
from dsp.frames import HOP_S, frame_count

FloatArray = npt.NDArray[np.float32]
FloatArray64 = npt.NDArray[np.float64]

__all__ = [
    "PitchCandidates",
    "PitchTrack",
    "concat_candidates",
    "f0_candidates",
    "f0_path",
    "f0_paths",
    "f0_track",
    "speaker_f0_path",
    "speaker_f0_paths",
    "hz_to_st",
    "st_to_hz",
    "speaker_range",
    "spread_st",
]

ANALYSIS_RATE_HZ = 4000
_HOP_A = int(round(ANALYSIS_RATE_HZ * HOP_S))  # 40 samples per 10 ms at 4 kHz
_N_CANDIDATES = 4
_CHUNK_FRAMES = 2000  # frames analysed per internal batch (bounds memory)
_VITERBI_CORE = 400  # frames per Viterbi chunk ...
_VITERBI_MARGIN = 30  # ... plus this context on each side (0.3 s)
_VITERBI_GROUP = 1024  # chunks searched at once (~68 min, ~40 MB: bounds memory; 512: slower)
_SLICE_FRAMES = 1 << 16  # frames per slice when scanning a whole call's candidates
_SCORE_ROWS = 1 << 14  # frames scored at once for the path search (float64 temporaries)
# speaker-adaptive second path (speaker_f0_path): cost per octave beyond the tolerance
SPEAKER_CENTRE_COST = 0.3
SPEAKER_CENTRE_TOLERANCE_OCT = 0.5
# subharmonic check (f0_path): the octave above a frame's best candidate gains up to this
# much score (never more than _SUBHARMONIC_EDGE above the best), see _subharmonic_check
SUBHARMONIC_COST = 0.25
_SUBHARMONIC_TOL_OCT = 0.06  # "an octave above": within 0.06 octave (~4 %) of twice f
_SUBHARMONIC_EDGE = 0.005


@dataclass(frozen=True)
class PitchTrack:
    """An f0 track on the 10 ms frame clock.

    Attributes
    ----------
    f0_hz : ndarray, shape (T,), float32
        Fundamental frequency in Hz; NaN where the frame is unvoiced or not analysed.
    periodicity : ndarray, shape (T,), float32
        Voicing strength in [0, 1]: the normalised cross-correlation at the best lag
        (1 = perfectly periodic); 0 where the frame was not analysed.
    """

    f0_hz: FloatArray
    periodicity: FloatArray

    @property
    def times_s(self) -> npt.NDArray[np.float64]:
        """Centre time of each frame in seconds, shape (T,)."""
        return np.arange(self.f0_hz.shape[0], dtype=np.float64) * HOP_S

    @property
    def voiced(self) -> npt.NDArray[np.bool_]:
        """Boolean voicing decision per frame, shape (T,)."""
        return np.isfinite(self.f0_hz)


@dataclass(frozen=True)
class PitchCandidates:
    """Frame-local f0 candidates of one channel on the 10 ms clock (see :func:`f0_candidates`).

    Attributes
    ----------
    freq_hz : ndarray, shape (T, K), float32
        Candidate frequencies in Hz, in rank order; NaN for missing ones (a peak whose
        interpolated lag falls just outside the range leaves a hole; all NaN in frames not
        analysed or without any periodicity peak).
    strength : ndarray, shape (T, K), float32
        NCCF height of each candidate (about 0-1); 0 where there is no candidate.
    periodicity : ndarray, shape (T,), float32
        Highest NCCF of the frame in [0, 1]; 0 where the frame was not analysed.
    """

    freq_hz: FloatArray
    strength: FloatArray
    periodicity: FloatArray

    @classmethod
    def from_strengths(cls, freq_hz: FloatArray, strength: FloatArray) -> PitchCandidates:
        """Candidates whose periodicity is derived from their strengths: each frame's best
        strength clipped to [0, 1] (missing candidates have strength 0). Bit for bit what
        :func:`f0_candidates` reports, so stored candidates need no periodicity track."""
        if strength.shape[1] == 0:
            periodicity = np.zeros(strength.shape[0], dtype=np.float32)
        else:
            periodicity = np.clip(strength.max(axis=1), np.float32(0.0), np.float32(1.0))
        return cls(freq_hz=freq_hz, strength=strength, periodicity=periodicity)

    @classmethod
    def empty(cls, n_frames: int, k: int = _N_CANDIDATES) -> PitchCandidates:
        """``n_frames`` frames without any candidate."""
        return cls(
            freq_hz=np.full((n_frames, k), np.nan, dtype=np.float32),
            strength=np.zeros((n_frames, k), dtype=np.float32),
            periodicity=np.zeros(n_frames, dtype=np.float32),
        )

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.periodicity.shape[0])

    def frames(self, start: int, stop: int) -> PitchCandidates:
        """Frames ``start .. stop - 1`` (copies, so a block's arrays can be freed)."""
        return PitchCandidates(
            freq_hz=self.freq_hz[start:stop].copy(),
            strength=self.strength[start:stop].copy(),
            periodicity=self.periodicity[start:stop].copy(),
        )


# --------------------------------------------------------------------------------------
# semitone helpers


def hz_to_st(f_hz: npt.ArrayLike, *, ref_hz: float = 100.0) -> npt.NDArray[np.float64]:
    """Convert frequencies in Hz to semitones relative to ``ref_hz``.

    Parameters
    ----------
    f_hz : array_like
        Frequencies in Hz, any shape. NaN, zero, negative or infinite values give NaN.
    ref_hz : float, optional
        Reference frequency in Hz (0 st), default 100 Hz. Must be finite and > 0.

    Returns
    -------
    ndarray, float64, same shape as ``f_hz``
        ``12 * log2(f_hz / ref_hz)``; NaN where undefined.
    """
    if not (math.isfinite(ref_hz) and ref_hz > 0):
        raise ParameterError(f"ref_hz must be a finite frequency > 0 Hz, got {ref_hz}")
    f = np.asarray(f_hz, dtype=np.float64)
    ok = np.isfinite(f) & (f > 0)
    out = np.full(f.shape, np.nan, dtype=np.float64)
    np.log2(f / ref_hz, out=out, where=ok)
    out *= 12.0
    return out


#: f0 frames further than this from their span's median are left out of its spread: an
#: octave error lands ~12 st from the contour, intonation rarely strays 8 st from the median
SPREAD_GUARD_ST = 8.0


def spread_st(voiced_st: npt.ArrayLike, *, guard_st: float = SPREAD_GUARD_ST) -> float:
    """Pitch variability of a span: the sd of its voiced f0 (semitones) without the frames
    more than ``guard_st`` from the span's median.

    Why: the tracker's rare gross errors (0.25 % of frames on synthetic telephone calls, one
    in a few hundred) are octave jumps, and one frame 12 st off adds ~1.2 st to the sd of a
    100-frame sentence, as much as speakers vary from sentence to sentence. Measured on
    synthetic espeak calls (``python bench/e2e_eval.py bench/out/calls_turn_c4``, per-IPU
    pitch variability against the clean utterance's f0 sd, r within a speaker): plain sd
    median 0.79, guarded 0.87. Robust scales (IQR, MAD) were tried and not kept: intonation
    contours are not Gaussian, so they measure something else than the sd.

    Parameters
    ----------
    voiced_st : array_like
        f0 in semitones of the span's voiced frames (NaN ignored).
    guard_st : float, optional
        Frames further than this from the median are left out; must be > 0.

    Returns
    -------
    float
        The sd in semitones; NaN when no frame is voiced.
    """
    if not guard_st > 0:
        raise ParameterError(f"guard_st must be > 0 semitones, got {guard_st}")
    v = np.asarray(voiced_st, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(np.std(v[np.abs(v - np.median(v)) <= guard_st]))


def st_to_hz(f_st: npt.ArrayLike, *, ref_hz: float = 100.0) -> npt.NDArray[np.float64]:
    """Convert semitones relative to ``ref_hz`` back to Hz (inverse of :func:`hz_to_st`).

    Parameters
    ----------
    f_st : array_like
        Pitch in semitones re ``ref_hz``, any shape; NaN stays NaN.
    ref_hz : float, optional
        Reference frequency in Hz, default 100 Hz. Must be finite and > 0.

    Returns
    -------
    ndarray, float64, same shape as ``f_st``
        ``ref_hz * 2 ** (f_st / 12)``.
    """
    if not (math.isfinite(ref_hz) and ref_hz > 0):
        raise ParameterError(f"ref_hz must be a finite frequency > 0 Hz, got {ref_hz}")
    s = np.asarray(f_st, dtype=np.float64)
    with np.errstate(over="ignore"):
        return np.asarray(ref_hz * np.exp2(s / 12.0), dtype=np.float64)


# --------------------------------------------------------------------------------------
# the tracker


@dataclass(frozen=True)
class _Geometry:
    """Lags and window layout at the analysis rate (all in analysis-rate samples)."""

    lag_max: int  # largest lag computed (covers fmin_hz with one lag to spare)
    n_blocks: int  # hop blocks per correlation window (odd)
    shift: int  # window centre sits ``shift`` samples before the frame centre
    n_fft: int

    @property
    def window(self) -> int:
        return self.n_blocks * _HOP_A

    @property
    def half_blocks(self) -> int:
        return (self.n_blocks - 1) // 2


def _geometry(fmin_hz: float, fmax_hz: float) -> _Geometry:
    fs = float(ANALYSIS_RATE_HZ)
    lag_max = int(math.ceil(fs / fmin_hz)) + 1
    # window ~1.8 periods of the lowest f0 (3 blocks = 30 ms at fmin 60 Hz), odd block count
    n_blocks = max(3, int(round(1.8 * fs / fmin_hz / _HOP_A)))
    n_blocks += 1 - n_blocks % 2
    # centre the product window exactly for a lag in the middle of the range (log scale)
    shift = int(round(0.5 * fs / math.sqrt(fmin_hz * fmax_hz)))
    n_fft = scipy.fft.next_fast_len(_HOP_A + lag_max + 1, real=True)
    return _Geometry(lag_max=lag_max, n_blocks=n_blocks, shift=shift, n_fft=n_fft)


def _halfband(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Low-pass with the binomial kernel [1, 4, 6, 4, 1] / 16 and keep every other sample.

    The kernel is centred on the kept samples (no delay). Response cos^4(pi f / fs): -0.6 dB at
    fs/16, -6 dB at fs/8 (1 kHz for fs = 8 kHz), -30 dB at 3 fs/8 (the band that aliases).
    """
    p = np.concatenate([np.zeros(2, np.float32), x, np.zeros(3, np.float32)])
    n_out = (x.shape[0] + 1) // 2
    out = 6.0 * p[2 : 2 + 2 * n_out : 2]
    out += 4.0 * (p[1 : 1 + 2 * n_out : 2] + p[3 : 3 + 2 * n_out : 2])
    out += p[0 : 2 * n_out : 2] + p[4 : 4 + 2 * n_out : 2]
    out *= np.float32(1.0 / 16.0)
    return out.astype(np.float32, copy=False)


def _dc_block(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """DC blocker at the analysis rate: pole 0.99 (-3 dB near 6 Hz, settles in ~25 ms)."""
    out = scipy.signal.lfilter([1.0, -1.0], [1.0, -0.99], x)
    return np.asarray(out, dtype=np.float32)


def _center_clip(x: npt.NDArray[np.float32], level: float) -> npt.NDArray[np.float32]:
    """Centre clipping (Sondhi 1968) at ``level`` times the local peak (max |x| over ~30 ms)."""
    n_blk = x.size // _HOP_A
    mag = np.abs(x)
    peak = mag[: n_blk * _HOP_A].reshape(n_blk, _HOP_A).max(axis=1)
    peak = np.maximum(peak, np.maximum(np.roll(peak, 1), np.roll(peak, -1)))
    thr = peak * np.float32(level)
    # |x| minus the threshold of its block (the last block's beyond the whole blocks)
    mag[: n_blk * _HOP_A].reshape(n_blk, _HOP_A)[...] -= thr[:, None]
    mag[n_blk * _HOP_A :] -= thr[-1] if thr.size else np.float32(0.0)
    out = np.where(mag > 0, np.sign(x) * mag, np.float32(0.0))
    return out.astype(np.float32, copy=False)


def _analyse(
    x: npt.NDArray[np.float32],
    q: int,
    frames: npt.NDArray[np.int64],
    geo: _Geometry,
    lag_lo: float,
    lag_hi: float,
    center_clip: float,
    octave_cost: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Candidates for ``frames`` of ``x`` (rate ``q`` * 4 kHz), in batches of nearby frames.

    Each batch decimates only its own stretch of signal plus a margin, so memory stays small
    and the cost follows the number of analysed frames.
    """
    n_sel = frames.size
    lags = np.full((n_sel, _N_CANDIDATES), np.nan)
    heights = np.full((n_sel, _N_CANDIDATES), -np.inf)
    best = np.zeros(n_sel)
    # analysis-rate context each side of a batch: DC settling + window + lags
    margin = 400 + geo.window + geo.shift + geo.lag_max + 2 * _HOP_A
    margin = -(-margin // _HOP_A) * _HOP_A  # whole hops: the clipping blocks stay on one grid
    edges = np.searchsorted(frames, np.arange(0, int(frames[-1]) + _CHUNK_FRAMES, _CHUNK_FRAMES))
    for batch, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        if hi <= lo:
            continue
        part = frames[lo:hi]
        # The batch's signal starts on the batch grid, not at its first selected frame: the
        # DC blocker's start-up then does not depend on which frames are selected, so a
        # frame's candidates do not depend on the mask (a tighter gate changes nothing else).
        f_first, f_last = batch * _CHUNK_FRAMES, int(part[-1])
        a_start = f_first * _HOP_A - margin  # analysis sample where this batch's signal starts
        a_stop = f_last * _HOP_A + margin
        i_start, i_stop = a_start * q, a_stop * q
        seg = x[max(i_start, 0) : max(min(i_stop, x.size), 0)]
        if i_start < 0 or i_stop > x.size:
            seg = np.concatenate(
                [
                    np.zeros(max(0, -i_start), np.float32),
                    seg,
                    np.zeros(max(0, i_stop - max(i_start, x.size)), np.float32),
                ]
            )
        xa = seg
        for _ in range(q.bit_length() - 1):
            xa = _halfband(xa)
        xa = _dc_block(xa)
        if center_clip > 0:
            xa = _center_clip(xa, center_clip)
        csum = np.empty(xa.size + 1, dtype=np.float64)
        csum[0] = 0.0
        np.cumsum(xa * xa, dtype=np.float64, out=csum[1:])
        energy = (csum[geo.window :] - csum[: -geo.window]).astype(np.float32)
        c_lags, c_heights, c_best = _candidates(
            xa, energy, part - f_first, geo, margin, lag_lo, lag_hi, octave_cost
        )
        k = c_lags.shape[1]
        lags[lo:hi, :k] = c_lags
        heights[lo:hi, :k] = c_heights
        best[lo:hi] = c_best
    return lags, heights, best


def _candidates(
    xp: npt.NDArray[np.float32],
    energy: npt.NDArray[np.float32],
    frames: npt.NDArray[np.int64],
    geo: _Geometry,
    pad: int,
    lag_lo: float,
    lag_hi: float,
    octave_cost: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """NCCF peaks for the given frames.

    Returns ``(lags, heights, best)``: ``(F, K)`` fractional lags (analysis samples) and NCCF
    heights of the K best peaks (NaN / -inf when fewer peaks), and ``(F,)`` the best height.
    """
    h = geo.half_blocks
    offs = np.arange(-h, h + 1)
    # hop blocks the frames' windows cover, and where each frame's blocks sit among them
    # (frames are sorted: a mark per block, no sort-based unique / searchsorted)
    base = int(frames[0]) - h
    covered = np.zeros(int(frames[-1]) + h - base + 1, dtype=bool)
    for o in offs:
        covered[frames + (o - base)] = True
    needed = np.flatnonzero(covered) + base
    rank = np.cumsum(covered, dtype=np.int64) - 1
    seg_len = _HOP_A + geo.lag_max + 1
    # block b starts at 40 b - 20 - shift (plus the padding)
    starts = needed * _HOP_A - _HOP_A // 2 - geo.shift + pad
    view = np.lib.stride_tricks.sliding_window_view(xp, seg_len)
    seg = view[starts]
    spec_seg = scipy.fft.rfft(seg, n=geo.n_fft, axis=1)
    spec_blk = scipy.fft.rfft(seg[:, :_HOP_A], n=geo.n_fft, axis=1)
    prod = spec_seg * np.conj(spec_blk)
    pos = rank[frames[:, None] + (offs[None, :] - base)]
    acc = prod[pos[:, 0]]
    for j in range(1, pos.shape[1]):
        acc += prod[pos[:, j]]
    # only the lags a peak in range can use (its neighbours included), and lag 0 (energy)
    lag_first = max(1, math.floor(lag_lo))
    lag_last = min(geo.lag_max - 1, math.ceil(lag_hi))
    r = scipy.fft.irfft(acc, n=geo.n_fft, axis=1)[:, lag_first - 1 : lag_last + 2]
    del acc
    # window energies at each lag: energy[k] = sum of xp[k : k + window] ** 2
    w_start = (frames - h) * _HOP_A - _HOP_A // 2 - geo.shift + pad
    e0 = energy[w_start][:, None]
    e = np.lib.stride_tricks.sliding_window_view(energy, lag_last - lag_first + 3)[
        w_start + (lag_first - 1)
    ]
    floor = np.float32(geo.window * 1e-10)  # below about -100 dBFS: treat as silence
    denom = np.sqrt(e0 * e)
    np.maximum(denom, floor, out=denom)
    nccf = r / denom
    nccf[e0[:, 0] <= floor] = 0.0
    a, b, c = nccf[:, :-2], nccf[:, 1:-1], nccf[:, 2:]  # b: lags lag_first .. lag_last
    lag_idx = np.arange(lag_first, lag_last + 1)
    is_peak = (b > a) & (b >= c) & (b > 0)
    # rank peaks by height plus the octave bonus, as the path search will score them: a
    # periodic signal has (nearly) equal peaks at every multiple of its period
    bonus = (-octave_cost * np.log2(lag_idx)).astype(np.float32)
    vals = np.where(is_peak, b + bonus[None, :], np.float32(-np.inf))
    k = min(_N_CANDIDATES, geo.lag_max - 1)
    rows = np.arange(vals.shape[0])
    top = np.empty((vals.shape[0], k), dtype=np.int64)
    valid = np.empty((vals.shape[0], k), dtype=bool)
    for j in range(k):  # k passes of argmax: cheaper than argpartition here
        col = np.argmax(vals, axis=1)
        top[:, j] = col
        valid[:, j] = np.isfinite(vals[rows, col])
        vals[rows, col] = -np.inf
    pa = a[rows[:, None], top].astype(np.float64)
    pb = b[rows[:, None], top].astype(np.float64)
    pc = c[rows[:, None], top].astype(np.float64)
    curv = pa - 2.0 * pb + pc
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where(valid & (curv < 0), 0.5 * (pa - pc) / curv, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    lags = np.asarray(top + lag_first + delta, dtype=np.float64)
    heights = np.minimum(pb - 0.25 * (pa - pc) * delta, 1.0)
    ok = valid & (lags >= lag_lo) & (lags <= lag_hi)
    lags = np.where(ok, lags, np.nan)
    heights = np.where(ok, heights, -np.inf)
    best = np.max(heights, axis=1)
    return lags, heights, best


def _viterbi_chunks(
    st: npt.NDArray[np.float32],
    lf: npt.NDArray[np.float32],
    *,
    octave_jump_cost: float,
    voiced_unvoiced_cost: float,
) -> npt.NDArray[np.int64]:
    """Best states of chunks searched side by side: ``st`` (L, C, S) strengths with the
    unvoiced state last, ``lf`` (L, C, S-1) log2 frequencies; returns (C, core). Columns are
    independent, so any grouping of chunks gives the same."""
    length, n_live, n_s = st.shape
    k = n_s - 1
    core, margin = _VITERBI_CORE, _VITERBI_MARGIN
    # from-state on the leading axis: elementwise maxima over contiguous (C, S) slabs are
    # much cheaper than reductions over a short last axis
    lf_t = np.ascontiguousarray(lf.transpose(0, 2, 1))  # (L, S-1, C)
    jump = np.float32(octave_jump_cost)
    vu = np.float32(voiced_unvoiced_cost)
    cand = np.empty((n_live, n_s), dtype=np.float32)
    best = np.empty((n_live, n_s), dtype=np.float32)
    gap = np.empty((n_live, k), dtype=np.float32)
    better = np.empty((n_live, n_s), dtype=bool)
    back = np.empty((length, n_live, n_s), dtype=np.int8)
    delta = st[0].copy()
    for t in range(1, length):
        arg = back[t]
        for i in range(n_s):  # score of reaching every state from state i
            if i < k:
                np.subtract(lf[t], lf_t[t - 1, i][:, None], out=gap)
                np.abs(gap, out=gap)
                gap *= jump
                np.subtract(delta[:, i : i + 1], gap, out=cand[:, :k])
                np.subtract(delta[:, i], vu, out=cand[:, k])
            else:
                np.subtract(delta[:, k : k + 1], vu, out=cand[:, :k])
                cand[:, k] = delta[:, k]
            if i == 0:
                best[:] = cand
                arg[:] = 0
            else:  # strict: ties keep the lower state, as argmax does
                np.greater(cand, best, out=better)
                np.maximum(best, cand, out=best)
                np.copyto(arg, np.int8(i), where=better)
        np.add(best, st[t], out=delta)
    path = np.empty((length, n_live), dtype=np.int64)
    state = np.argmax(delta, axis=1)
    cols = np.arange(n_live)
    for t in range(length - 1, -1, -1):
        path[t] = state
        state = back[t, cols, state]
    return path[margin : margin + core].T


# Scores of frames for the path search: (rows,) frame indices -> strengths (rows, K + 1),
# unvoiced state last, and log2 frequencies (rows, K), both float64.
_ScoreFn = Callable[
    [npt.NDArray[np.int64]], tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
]


@dataclass(frozen=True)
class _PathSearch:
    """One signal's path search: its length, the frames with a voiced state at all, and
    ``scores(frames)``: strengths (unvoiced state last, -inf for missing candidates) and
    log2 frequencies of the voiced states of the given frames."""

    n_frames: int
    any_voiced: npt.NDArray[np.bool_]
    scores: _ScoreFn


def _viterbi_f0(
    searches: Sequence[_PathSearch],
    k: int,
    *,
    octave_jump_cost: float,
    voiced_unvoiced_cost: float,
) -> list[FloatArray]:
    """f0 (Hz, NaN when unvoiced) of each search's best path by dynamic programming
    (maximum total strength minus costs).

    Each signal's frames are cut into chunks of ``_VITERBI_CORE`` frames, each searched
    with ``_VITERBI_MARGIN`` frames of context on both sides; chunks are searched side by
    side (vectorised) in groups of ``_VITERBI_GROUP``, their scores built per group, so the
    working memory does not grow with the call; chunks with no voiced candidate at all are
    skipped. A group may hold chunks of several signals: a step of the search costs about
    the same for one chunk as for hundreds, and each signal's path is the one it would get
    searched alone.
    """
    core, margin = _VITERBI_CORE, _VITERBI_MARGIN
    f0s = [np.full(s.n_frames, np.nan, dtype=np.float32) for s in searches]
    if not searches:
        return f0s
    length = core + 2 * margin
    live = [_live_chunks(s.any_voiced, max(1, -(-s.n_frames // core))) for s in searches]
    # every live chunk of every search, in order: which search (owner) and which chunk
    owner = np.concatenate([np.full(ids.size, i, dtype=np.int64) for i, ids in enumerate(live)])
    chunk = np.concatenate(live)
    unvoiced_only = np.concatenate([np.full(k, -np.inf), [0.0]]).astype(np.float32)
    steps = np.arange(length, dtype=np.int64)[:, None] - margin
    for g in range(0, chunk.size, _VITERBI_GROUP):
        owners, ids = owner[g : g + _VITERBI_GROUP], chunk[g : g + _VITERBI_GROUP]
        # time-major (L, C) layout so each step reads contiguous memory
        idx = steps + ids[None, :] * core
        st = np.empty((length, ids.size, k + 1), dtype=np.float32)
        lf64 = np.empty((length, ids.size, k), dtype=np.float64)
        spans = _runs_of(owners)
        for i, lo, hi in spans:
            st[:, lo:hi], lf64[:, lo:hi] = _chunk_scores(searches[i], idx[:, lo:hi], k)
            st[:, lo:hi][(idx[:, lo:hi] < 0) | (idx[:, lo:hi] >= searches[i].n_frames)] = (
                unvoiced_only
            )
        state = _viterbi_chunks(
            st,
            lf64.astype(np.float32),
            octave_jump_cost=octave_jump_cost,
            voiced_unvoiced_cost=voiced_unvoiced_cost,
        )  # (C, core)
        del st
        frames = idx[margin : margin + core].T  # (C, core)
        core_lf = lf64[margin : margin + core].transpose(1, 0, 2)  # (C, core, K)
        chosen = np.take_along_axis(core_lf, np.minimum(state, k - 1)[..., None], axis=2)
        for i, lo, hi in spans:
            voiced = (state[lo:hi] < k) & (frames[lo:hi] < searches[i].n_frames)
            f0s[i][frames[lo:hi][voiced]] = np.exp2(chosen[lo:hi][voiced, 0]).astype(np.float32)
    return f0s


def _runs_of(owners: npt.NDArray[np.int64]) -> list[tuple[int, int, int]]:
    """(value, start, stop) of each run of equal values in ``owners``."""
    cuts = np.flatnonzero(np.diff(owners)) + 1
    starts = np.concatenate([[0], cuts]).astype(int)
    stops = np.concatenate([cuts, [owners.size]]).astype(int)
    return [(int(owners[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _chunk_scores(
    search: _PathSearch, idx: npt.NDArray[np.int64], k: int
) -> tuple[npt.NDArray[np.float32], FloatArray64]:
    """Strengths (float32) and log2 frequencies of the (L, C) frames ``idx`` of one search,
    built in slices of rows (the float64 temporaries of scoring stay small)."""
    rows = np.clip(idx, 0, search.n_frames - 1).ravel()
    st = np.empty((rows.size, k + 1), dtype=np.float32)
    lf64 = np.empty((rows.size, k), dtype=np.float64)
    for a in range(0, rows.size, _SCORE_ROWS):
        part = slice(a, a + _SCORE_ROWS)
        st[part], lf64[part] = search.scores(rows[part])
    return st.reshape(*idx.shape, k + 1), lf64.reshape(*idx.shape, k)


def _live_chunks(any_voiced: npt.NDArray[np.bool_], n_chunks: int) -> npt.NDArray[np.int64]:
    """Chunks (``_VITERBI_CORE`` frames plus ``_VITERBI_MARGIN`` each side, clipped to the
    call) holding a frame of ``any_voiced``, without a call-long cumulative count."""
    core, margin = _VITERBI_CORE, _VITERBI_MARGIN
    padded = np.zeros(n_chunks * core, dtype=bool)
    padded[: any_voiced.size] = any_voiced
    blocks = padded.reshape(n_chunks, core)
    live: npt.NDArray[np.bool_] = np.asarray(blocks.any(axis=1))
    live[1:] |= blocks[:-1, core - margin :].any(axis=1)  # the previous chunk's tail
    live[:-1] |= blocks[1:, :margin].any(axis=1)  # the next chunk's head
    return np.flatnonzero(live).astype(np.int64)


def _check_range(fmin_hz: float, fmax_hz: float) -> None:
    if not (math.isfinite(fmin_hz) and math.isfinite(fmax_hz) and 20.0 <= fmin_hz < fmax_hz):
        raise ParameterError(
            f"need 20 <= fmin_hz < fmax_hz, got fmin_hz={fmin_hz}, fmax_hz={fmax_hz} "
            "(speech: 60-500 Hz)"
        )
    if fmax_hz > 1000.0 or fmax_hz < 1.2 * fmin_hz:
        raise ParameterError(
            f"fmax_hz must be <= 1000 Hz and >= 1.2 * fmin_hz, got fmin_hz={fmin_hz}, "
            f"fmax_hz={fmax_hz} (speech: 60-500 Hz)"
        )


def _check_unit(name: str, value: float, bottom: float, top: float) -> None:
    if not (math.isfinite(value) and bottom <= value <= top):
        raise ParameterError(f"{name} must be in [{bottom}, {top}], got {value}")


def _frame_mask(
    frame_mask: npt.ArrayLike | None, n_frames: int, what: str
) -> npt.NDArray[np.bool_]:
    if frame_mask is None:
        return np.ones(n_frames, dtype=bool)
    mask = np.asarray(frame_mask, dtype=bool)
    if mask.shape != (n_frames,):
        raise ParameterError(f"frame_mask must have shape ({n_frames},) {what}, got {mask.shape}")
    return mask


def f0_candidates(
    y: npt.ArrayLike,
    sr: int,
    *,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    frame_mask: npt.ArrayLike | None = None,
    octave_cost: float = 0.01,
    center_clip: float = 0.4,
) -> PitchCandidates:
    """Frame-local stage of the tracker: the best NCCF peaks of every 10 ms frame.

    Parameters
    ----------
    y : array_like, shape (n,)
        Mono signal (one channel), any float scale. NaN / inf samples are read as 0.
    sr : int
        Sample rate in Hz, >= 8000 (8 and 16 kHz are the fast paths).
    fmin_hz, fmax_hz : float, optional
        Search range in Hz, ``20 <= fmin_hz < fmax_hz <= 1000``; default 60-500 Hz. It also
        sets the correlation window (~1.8 periods of ``fmin_hz``).
    frame_mask : array_like of bool, shape (T,), optional
        Frames to analyse (e.g. frames with speech energy); the others get no candidate and
        0 periodicity, and cost nothing. ``T = dsp.frames.frame_count(n, sr)``.
    octave_cost : float, optional
        Octave bonus used to rank the peaks (as :func:`f0_path` scores them): a periodic
        signal has nearly equal peaks at every multiple of its period, and the true one must
        not fall out of the top ``K``.
    center_clip : float, optional
        Centre-clipping level as a fraction of the local peak (0 = off). Flattens the
        spectrum so a strong second harmonic (telephone band, fundamental filtered out)
        does not pass for the fundamental; also lowers voicing false alarms.

    Returns
    -------
    PitchCandidates
        ``K = 4`` candidates per frame, best first. Frame ``i`` is centred on sample
        ``i * hop`` and uses at most ~40 ms of audio on either side (60 Hz floor), so a long
        call can be analysed block by block and the blocks' candidates concatenated
        (:func:`concat_candidates`). With 0.2 s of audio context on both sides of each block
        (the pipeline's) the joined candidates differ from the whole-call analysis only by
        the DC blocker's transient (NCCF heights within ~0.02 on PTDB speech) and the path
        through them is the same; with 0.1 s, a few frames at each join differ.
    """
    x_in = np.asarray(y)
    if x_in.ndim != 1:
        raise ParameterError(
            f"f0 tracking needs one channel, shape (n,); got shape {x_in.shape} "
            "(pass one row of the (2, n) stereo array at a time)"
        )
    if not (isinstance(sr, int | np.integer) and sr >= 8000):
        raise ParameterError(f"sr must be an integer sample rate >= 8000 Hz, got {sr!r}")
    _check_range(fmin_hz, fmax_hz)
    _check_unit("octave_cost", octave_cost, -0.5, 2.0)
    _check_unit("center_clip", center_clip, 0.0, 0.9)
    sr = int(sr)
    n = int(x_in.shape[0])
    n_frames = frame_count(n, sr)
    mask = _frame_mask(frame_mask, n_frames, f"for {n} samples at {sr} Hz (frame_count)")
    out = PitchCandidates.empty(n_frames)
    frames = np.flatnonzero(mask).astype(np.int64)
    if frames.size == 0 or n == 0:
        return out

    x = np.asarray(x_in, dtype=np.float32)
    if not np.isfinite(x).all():
        x = np.where(np.isfinite(x), x, np.float32(0.0))
    if sr % ANALYSIS_RATE_HZ == 0 and sr // ANALYSIS_RATE_HZ in (1, 2, 4):
        q = sr // ANALYSIS_RATE_HZ
    else:  # unusual rate: resample the whole signal once, then work at 4 kHz
        g = math.gcd(sr, ANALYSIS_RATE_HZ)
        x = scipy.signal.resample_poly(x, ANALYSIS_RATE_HZ // g, sr // g).astype(np.float32)
        q = 1
    geo = _geometry(fmin_hz, fmax_hz)
    fs = float(ANALYSIS_RATE_HZ)
    lags, heights, best = _analyse(
        x, q, frames, geo, fs / fmax_hz, fs / fmin_hz, center_clip, octave_cost
    )
    ok = np.isfinite(lags)
    with np.errstate(invalid="ignore", divide="ignore"):
        out.freq_hz[frames] = np.where(ok, fs / lags, np.nan)
    out.strength[frames] = np.where(ok, heights, 0.0)
    out.periodicity[frames] = np.clip(np.where(np.isfinite(best), best, 0.0), 0.0, 1.0)
    return out


def concat_candidates(parts: Sequence[PitchCandidates]) -> PitchCandidates:
    """Join candidates of consecutive stretches of one channel along time.

    Parameters
    ----------
    parts : sequence of PitchCandidates
        In time order, e.g. ``f0_candidates(block).frames(first, first + n_keep)`` of each
        block of a long call.

    Returns
    -------
    PitchCandidates
        ``T = sum of the parts' T``; an empty sequence gives 0 frames.
    """
    if not parts:
        return PitchCandidates.empty(0)
    return PitchCandidates(
        freq_hz=np.concatenate([p.freq_hz for p in parts], axis=0),
        strength=np.concatenate([p.strength for p in parts], axis=0),
        periodicity=np.concatenate([p.periodicity for p in parts], axis=0),
    )


def _subharmonic_check(
    score: FloatArray64, log2_f: FloatArray64, ok: npt.NDArray[np.bool_], cost: float
) -> FloatArray64:
    """Scores after the subharmonic check (a new array; the inputs are not changed).

    A periodic voice has NCCF peaks at its period T and at 2T, 3T...; on very regular voices
    (synthetic ones, through the telephone band and centre clipping) the peak at 2T is often
    the higher, by up to ~0.25, so the track falls an octave below the truth. When a frame's
    best candidate (frequency f) has a candidate at 2f (within ``_SUBHARMONIC_TOL_OCT``),
    that candidate gains ``cost`` but ends at most ``_SUBHARMONIC_EDGE`` above the best
    score: the pair is then (nearly) tied and continuity (the path's octave-jump cost)
    decides, while the frame's voicing score does not rise.

    Parameters
    ----------
    score : ndarray, shape (F, K)
        Candidate scores (NCCF height plus octave bonus); only entries with ``ok`` count.
    log2_f : ndarray, shape (F, K)
        log2 of the candidate frequencies in Hz.
    ok : ndarray of bool, shape (F, K)
        Candidates present and in range.
    cost : float
        Most score gained, >= 0 (0 = no check).

    Returns
    -------
    ndarray, shape (F, K), float64
    """
    out = np.array(score, dtype=np.float64)
    if cost <= 0 or out.size == 0:
        return out
    masked = np.where(ok, out, -np.inf)
    top = np.argmax(masked, axis=1)[:, None]
    best = np.take_along_axis(masked, top, axis=1)
    octave_up = np.abs(log2_f - np.take_along_axis(log2_f, top, axis=1) - 1.0)
    lift = ok & np.isfinite(best) & (octave_up < _SUBHARMONIC_TOL_OCT)
    raised = np.maximum(out, np.minimum(out + cost, best + _SUBHARMONIC_EDGE))
    return np.where(lift, raised, out)


def f0_path(
    candidates: PitchCandidates,
    *,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    frame_mask: npt.ArrayLike | None = None,
    voicing_threshold: float = 0.35,
    octave_cost: float = 0.01,
    octave_jump_cost: float = 0.6,
    voiced_unvoiced_cost: float = 0.14,
    centre_hz: float | None = None,
    centre_cost: float = 0.0,
    centre_tolerance_oct: float = 0.5,
    subharmonic_cost: float = SUBHARMONIC_COST,
) -> PitchTrack:
    """Call-wide stage of the tracker: the best path through the candidates (Viterbi).

    Parameters
    ----------
    candidates : PitchCandidates
        From :func:`f0_candidates` (or joined blocks, :func:`concat_candidates`), T frames.
    fmin_hz, fmax_hz : float, optional
        Candidates outside this range in Hz are dropped. ``fmin_hz`` is also the reference
        of the octave bonus (a constant shift of all voiced candidates' scores against
        ``voicing_threshold``: keep it when narrowing the range with ``centre_hz``).
    frame_mask : array_like of bool, shape (T,), optional
        Frames that may be voiced (e.g. one speaker's speech); the others come out unvoiced
        with 0 periodicity.
    voicing_threshold : float, optional
        NCCF height (0-1) a candidate must beat to be preferred to "unvoiced".
    octave_cost : float, optional
        Strength bonus per octave of f0 above ``fmin_hz``, against sub-octave errors.
    octave_jump_cost : float, optional
        Path cost per octave of f0 change between consecutive frames.
    voiced_unvoiced_cost : float, optional
        Path cost of each voiced/unvoiced transition.
    centre_hz : float, optional
        The speaker's typical f0 in Hz (e.g. the median of a first path). With
        ``centre_cost > 0``, a candidate more than ``centre_tolerance_oct`` octaves from it
        loses ``centre_cost`` per octave beyond: octave errors (exactly one octave off) of a
        speaker lose against the right candidate, real excursions within the tolerance are
        untouched.
    centre_cost : float, optional
        Strength cost per octave beyond the tolerance, >= 0 (0 = off).
    centre_tolerance_oct : float, optional
        Half-width in octaves of the cost-free band around ``centre_hz``.
    subharmonic_cost : float, optional
        Subharmonic check, >= 0 (0 = off): when a frame's best candidate has a candidate an
        octave above it, that one gains up to this much score, never ending more than 0.005
        above the best, so continuity decides between the two. Against sub-octave errors on
        very periodic high voices (the NCCF at twice the period beats the one at the period).
        Measured (``python bench/pitch_synth.py``, 42 espeak-ng phone calls): gross errors
        20.3 -> 1.9 % (one path), 14.3 -> 0.25 % (speaker path); PTDB unchanged.

    Returns
    -------
    PitchTrack
        ``f0_hz`` and ``periodicity``, both ``(T,)`` float32. The search runs on 4 s chunks
        with 0.3 s of context on both sides, vectorised across chunks; chunks without any
        voiced candidate are skipped (cost follows the masked-in frames).
    """
    return f0_paths(
        [candidates],
        frame_masks=[frame_mask],
        centres_hz=[centre_hz],
        fmin_hz=fmin_hz,
        fmax_hz=fmax_hz,
        voicing_threshold=voicing_threshold,
        octave_cost=octave_cost,
        octave_jump_cost=octave_jump_cost,
        voiced_unvoiced_cost=voiced_unvoiced_cost,
        centre_cost=centre_cost,
        centre_tolerance_oct=centre_tolerance_oct,
        subharmonic_cost=subharmonic_cost,
    )[0]


def f0_paths(
    candidates: Sequence[PitchCandidates],
    *,
    frame_masks: Sequence[npt.ArrayLike | None] | None = None,
    centres_hz: Sequence[float | None] | None = None,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    voicing_threshold: float = 0.35,
    octave_cost: float = 0.01,
    octave_jump_cost: float = 0.6,
    voiced_unvoiced_cost: float = 0.14,
    centre_cost: float = 0.0,
    centre_tolerance_oct: float = 0.5,
    subharmonic_cost: float = SUBHARMONIC_COST,
) -> list[PitchTrack]:
    """:func:`f0_path` of several signals (e.g. the two speakers of a call) with the same
    costs, searched together: each track is the one :func:`f0_path` gives that signal alone
    (``frame_masks[i]``, ``centres_hz[i]``), and the search costs little more than one."""
    _check_range(fmin_hz, fmax_hz)
    for name, value in [
        ("voicing_threshold", voicing_threshold),
        ("octave_jump_cost", octave_jump_cost),
        ("voiced_unvoiced_cost", voiced_unvoiced_cost),
        ("centre_cost", centre_cost),
        ("centre_tolerance_oct", centre_tolerance_oct),
        ("subharmonic_cost", subharmonic_cost),
    ]:
        _check_unit(name, value, 0.0, 2.0)
    _check_unit("octave_cost", octave_cost, -0.5, 2.0)
    n = len(candidates)
    masks = [None] * n if frame_masks is None else list(frame_masks)
    centres = [None] * n if centres_hz is None else list(centres_hz)
    if len(masks) != n or len(centres) != n:
        raise ParameterError(
            f"need one frame mask and one centre per signal: {n} signals, "
            f"{len(masks)} masks, {len(centres)} centres"
        )
    f0s = [np.full(c.n_frames, np.nan, dtype=np.float32) for c in candidates]
    periodicities = []
    searches: dict[int, list[tuple[int, _PathSearch]]] = {}  # by candidates per frame
    for i, (cands, mask_i, centre_i) in enumerate(zip(candidates, masks, centres, strict=True)):
        mask = _frame_mask(mask_i, cands.n_frames, "(one per candidate frame)")
        search = _path_search(
            cands,
            mask,
            centre_i if centre_cost > 0 else None,
            fmin_hz=fmin_hz,
            fmax_hz=fmax_hz,
            voicing_threshold=voicing_threshold,
            octave_cost=octave_cost,
            centre_cost=centre_cost,
            centre_tolerance_oct=centre_tolerance_oct,
            subharmonic_cost=subharmonic_cost,
        )
        if search is not None:  # None: no frame may be voiced
            searches.setdefault(cands.freq_hz.shape[1], []).append((i, search))
        periodicities.append(np.where(mask, cands.periodicity, np.float32(0.0)).astype(np.float32))
    for k, group in searches.items():
        found = _viterbi_f0(
            [search for _, search in group],
            k,
            octave_jump_cost=octave_jump_cost,
            voiced_unvoiced_cost=voiced_unvoiced_cost,
        )
        for (i, _), f0 in zip(group, found, strict=True):
            f0s[i] = f0
    return [PitchTrack(f0_hz=f, periodicity=p) for f, p in zip(f0s, periodicities, strict=True)]


def _path_search(
    candidates: PitchCandidates,
    mask: npt.NDArray[np.bool_],
    centre_hz: float | None,
    *,
    fmin_hz: float,
    fmax_hz: float,
    voicing_threshold: float,
    octave_cost: float,
    centre_cost: float,
    centre_tolerance_oct: float,
    subharmonic_cost: float,
) -> _PathSearch | None:
    """The path search of one signal's ``mask`` frames; None when no frame may be voiced."""
    use_centre = centre_hz is not None
    if use_centre and not (centre_hz is not None and math.isfinite(centre_hz) and centre_hz > 0):
        raise ParameterError(f"centre_hz must be a finite frequency > 0 Hz, got {centre_hz}")
    n_frames = candidates.n_frames
    k = candidates.freq_hz.shape[1]
    usable = np.zeros(n_frames, dtype=bool)
    for a in range(0, n_frames, _SLICE_FRAMES):
        b = min(a + _SLICE_FRAMES, n_frames)
        usable[a:b] = mask[a:b] & np.isfinite(candidates.freq_hz[a:b]).any(axis=1)
    if not usable.any():
        return None
    log2_fmin = math.log2(fmin_hz)
    log2_centre = math.log2(centre_hz) if use_centre and centre_hz is not None else 0.0

    def in_range(rows: npt.NDArray[np.int64]) -> tuple[FloatArray64, npt.NDArray[np.bool_]]:
        freq = candidates.freq_hz[rows].astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(freq) & (freq >= fmin_hz) & (freq <= fmax_hz)
        return freq, ok

    def scores(rows: npt.NDArray[np.int64]) -> tuple[FloatArray64, FloatArray64]:
        # frames without candidates (or masked out): only the unvoiced state
        strength = np.full((rows.size, k + 1), -np.inf)
        strength[:, -1] = 0.0
        log2_f = np.zeros((rows.size, k))
        use = usable[rows]
        if not use.any():
            return strength, log2_f
        rows = rows[use]  # score only these (row by row: the same numbers)
        freq, ok = in_range(rows)
        with np.errstate(invalid="ignore"):
            cand_log2 = np.where(ok, np.log2(np.where(ok, freq, 1.0)), 0.0)
        score = candidates.strength[rows] + octave_cost * (cand_log2 - log2_fmin)
        score = _subharmonic_check(score, cand_log2, ok, subharmonic_cost)
        if use_centre:
            far = np.abs(cand_log2 - log2_centre) - centre_tolerance_oct
            score -= centre_cost * np.maximum(far, 0.0)
        strength[use, :-1] = np.where(ok, score, -np.inf)
        strength[use, -1] = voicing_threshold
        log2_f[use] = cand_log2
        return strength, log2_f

    # frames with a voiced state, in slices (bounded temporaries)
    any_voiced = np.zeros(n_frames, dtype=bool)
    for a in range(0, n_frames, _SLICE_FRAMES):
        rows = np.arange(a, min(a + _SLICE_FRAMES, n_frames), dtype=np.int64)
        any_voiced[rows] = usable[rows] & in_range(rows)[1].any(axis=1)
    return _PathSearch(n_frames, any_voiced, scores)


def speaker_f0_path(
    candidates: PitchCandidates,
    *,
    speech: npt.ArrayLike | None = None,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    voicing_threshold: float = 0.35,
    octave_cost: float = 0.01,
    octave_jump_cost: float = 0.6,
    voiced_unvoiced_cost: float = 0.14,
    centre_cost: float = SPEAKER_CENTRE_COST,
    centre_tolerance_oct: float = SPEAKER_CENTRE_TOLERANCE_OCT,
    subharmonic_cost: float = SUBHARMONIC_COST,
    min_voiced_frames: int = 50,
) -> PitchTrack:
    """Speaker-adaptive path: a first path, the speaker's median f0, a second path around it.

    Parameters
    ----------
    candidates : PitchCandidates
        One channel's candidates for the whole call, T frames.
    speech : array_like of bool, shape (T,), optional
        This speaker's speech frames: only they may be voiced, and only they set the median
        (so the other party's bleed does not). Default: all frames.
    fmin_hz, fmax_hz : float, optional
        Search range in Hz of both paths.
    voicing_threshold, octave_cost, octave_jump_cost, voiced_unvoiced_cost : float, optional
        Path costs of both paths, see :func:`f0_path`.
    subharmonic_cost : float, optional
        Subharmonic check of both paths, see :func:`f0_path`.
    centre_cost, centre_tolerance_oct : float, optional
        Of the second path (see :func:`f0_path`): cost per octave beyond
        ``centre_tolerance_oct`` octaves from the first path's median.
    min_voiced_frames : int, optional
        With fewer voiced speech frames in the first path (0.5 s), it is returned as is.

    Returns
    -------
    PitchTrack
        ``(T,)`` f0 and periodicity; unvoiced and 0 outside ``speech``.
    """
    return speaker_f0_paths(
        [candidates],
        speeches=[speech],
        fmin_hz=fmin_hz,
        fmax_hz=fmax_hz,
        voicing_threshold=voicing_threshold,
        octave_cost=octave_cost,
        octave_jump_cost=octave_jump_cost,
        voiced_unvoiced_cost=voiced_unvoiced_cost,
        centre_cost=centre_cost,
        centre_tolerance_oct=centre_tolerance_oct,
        subharmonic_cost=subharmonic_cost,
        min_voiced_frames=min_voiced_frames,
    )[0]


def speaker_f0_paths(
    candidates: Sequence[PitchCandidates],
    *,
    speeches: Sequence[npt.ArrayLike | None] | None = None,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    voicing_threshold: float = 0.35,
    octave_cost: float = 0.01,
    octave_jump_cost: float = 0.6,
    voiced_unvoiced_cost: float = 0.14,
    centre_cost: float = SPEAKER_CENTRE_COST,
    centre_tolerance_oct: float = SPEAKER_CENTRE_TOLERANCE_OCT,
    subharmonic_cost: float = SUBHARMONIC_COST,
    min_voiced_frames: int = 50,
) -> list[PitchTrack]:
    """:func:`speaker_f0_path` of several speakers (``speeches[i]`` the frames of
    ``candidates[i]``), each pass of all of them in one search (:func:`f0_paths`): the
    same tracks, in about half the time of one search per speaker."""
    search = functools.partial(
        f0_paths,
        fmin_hz=fmin_hz,
        fmax_hz=fmax_hz,
        voicing_threshold=voicing_threshold,
        octave_cost=octave_cost,
        octave_jump_cost=octave_jump_cost,
        voiced_unvoiced_cost=voiced_unvoiced_cost,
        subharmonic_cost=subharmonic_cost,
    )
    masks = [None] * len(candidates) if speeches is None else list(speeches)
    paths = search(candidates, frame_masks=masks)
    centres: dict[int, float] = {}
    for i, first in enumerate(paths):
        voiced = first.f0_hz[np.isfinite(first.f0_hz)]
        if voiced.size >= max(1, min_voiced_frames) and centre_cost > 0:
            centres[i] = float(np.median(voiced))
    again = sorted(centres)
    second = search(
        [candidates[i] for i in again],
        frame_masks=[masks[i] for i in again],
        centres_hz=[centres[i] for i in again],
        centre_cost=centre_cost,
        centre_tolerance_oct=centre_tolerance_oct,
    )
    for i, track in zip(again, second, strict=True):
        paths[i] = track
    return paths


def f0_track(
    y: npt.ArrayLike,
    sr: int,
    *,
    fmin_hz: float = 60.0,
    fmax_hz: float = 500.0,
    frame_mask: npt.ArrayLike | None = None,
    speaker_adaptive: bool = False,
    voicing_threshold: float = 0.35,
    octave_cost: float = 0.01,
    octave_jump_cost: float = 0.6,
    voiced_unvoiced_cost: float = 0.14,
    center_clip: float = 0.4,
) -> PitchTrack:
    """Track f0 on the 10 ms frame clock: :func:`f0_candidates` then :func:`f0_path`.

    Parameters
    ----------
    y : array_like, shape (n,)
        Mono signal (one channel), any float scale. NaN / inf samples are read as 0.
    sr : int
        Sample rate in Hz, >= 8000 (8 and 16 kHz are the fast paths).
    fmin_hz, fmax_hz : float, optional
        Search range in Hz, ``20 <= fmin_hz < fmax_hz <= 1000``; default 60-500 Hz.
    frame_mask : array_like of bool, shape (T,), optional
        Frames to analyse (e.g. frames with speech energy); the others come out unvoiced
        (NaN f0, 0 periodicity) and cost nothing. ``T = dsp.frames.frame_count(n, sr)``.
    speaker_adaptive : bool, optional
        Treat the whole signal as one speaker and search with :func:`speaker_f0_path`
        (second path penalising candidates far from the first path's median); default
        False: one path.
    voicing_threshold, octave_cost, octave_jump_cost, voiced_unvoiced_cost : float, optional
        Path costs, see :func:`f0_path`.
    center_clip : float, optional
        Centre-clipping level, see :func:`f0_candidates`.

    Returns
    -------
    PitchTrack
        ``f0_hz`` and ``periodicity``, both ``(T,)`` float32; frame ``i`` is centred on
        sample ``i * hop`` (time ``i * 0.01`` s).

    Notes
    -----
    Measured with ``python bench/pitch_ptdb.py`` on PTDB-TUG (laryngograph reference), at
    16 kHz and as 8 kHz mu-law telephone audio: gross errors 0-1.7 %, median error 11-15
    cents, voicing recall 89-100 %.
    """
    for name, value in [
        ("voicing_threshold", voicing_threshold),
        ("octave_jump_cost", octave_jump_cost),
        ("voiced_unvoiced_cost", voiced_unvoiced_cost),
    ]:
        _check_unit(name, value, 0.0, 2.0)
    cands = f0_candidates(
        y,
        sr,
        fmin_hz=fmin_hz,
        fmax_hz=fmax_hz,
        frame_mask=frame_mask,
        octave_cost=octave_cost,
        center_clip=center_clip,
    )
    costs: dict[str, float] = {
        "fmin_hz": fmin_hz,
        "fmax_hz": fmax_hz,
        "voicing_threshold": voicing_threshold,
        "octave_cost": octave_cost,
        "octave_jump_cost": octave_jump_cost,
        "voiced_unvoiced_cost": voiced_unvoiced_cost,
    }
    if speaker_adaptive:
        return speaker_f0_path(
            cands,
            fmin_hz=fmin_hz,
            fmax_hz=fmax_hz,
            voicing_threshold=voicing_threshold,
            octave_cost=octave_cost,
            octave_jump_cost=octave_jump_cost,
            voiced_unvoiced_cost=voiced_unvoiced_cost,
        )
    return f0_path(cands, **costs)


def speaker_range(
    f0_hz: npt.ArrayLike,
    *,
    octaves_below: float = 1.0,
    octaves_above: float = 1.0,
    min_voiced_frames: int = 50,
    default: tuple[float, float] = (60.0, 500.0),
) -> tuple[float, float]:
    """A search range adapted to one speaker, from a first-pass f0 track.

    The ceiling is ``octaves_above`` above the median voiced f0 and the floor
    ``octaves_below`` below it, but never above ``default[0]`` (raising the floor changed
    the candidate set and caused octave-up errors in tests); both within 40-1000 Hz.
    Tracking again with this range removes octave-up errors (a strong second harmonic
    taken for f0, typical of telephone audio where the fundamental is filtered out), at
    the cost of halving rare excursions more than an octave above the median.
    Measured (``python bench/pitch_ptdb.py``): PTDB M01 at 8 kHz telephone 1.7 -> 0 % GPE,
    but F01 telephone 0 -> 2.7 % (one octave-up syllable still inside the range); Katie
    (ms-katiesteve) telephone median 167 -> 158 Hz (16 kHz: 155 Hz), her far-from-median
    frames 34 -> 17 %; Steve telephone 9 -> 1 %.

    Parameters
    ----------
    f0_hz : array_like, shape (T,)
        First-pass f0 in Hz, NaN when unvoiced (e.g. ``f0_track(...).f0_hz``).
    octaves_below, octaves_above : float, optional
        Extent of the range around the median, in octaves (> 0).
    min_voiced_frames : int, optional
        With fewer voiced frames than this (0.5 s at 10 ms), ``default`` is returned.
    default : (float, float), optional
        Range returned when there is too little voiced speech, in Hz.

    Returns
    -------
    (fmin_hz, fmax_hz) : tuple of float
    """
    if not (octaves_below > 0 and octaves_above > 0):
        raise ParameterError(
            f"octaves_below and octaves_above must be > 0, got {octaves_below}, {octaves_above}"
        )
    f = np.asarray(f0_hz, dtype=np.float64).ravel()
    v = f[np.isfinite(f) & (f > 0)]
    if v.size < max(1, min_voiced_frames):
        return float(default[0]), float(default[1])
    med = float(np.median(v))
    # The floor is only ever lowered: raising it changed the analysis window and candidate
    # set and caused octave-up errors on PTDB F01 (telephone: 0 -> 3.7 % GPE).
    lo = max(40.0, min(float(default[0]), med * 2.0**-octaves_below))
    hi = min(1000.0, med * 2.0**octaves_above)
    return lo, max(hi, 1.25 * lo)
