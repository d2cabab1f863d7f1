"""Per-channel speech activity with bleed/crosstalk rejection, and inter-pausal units (IPUs).

Three steps, each a small pure function:

1. :func:`frame_features` turns ONE channel into a few per-frame log-energy tracks on the
   10 ms clock of :mod:`dsp.frames`. It is frame-local (each frame sees 15 ms of audio either
   side), so the pipeline can compute it block by block on long calls and concatenate.
2. :func:`detect_speech` decides, jointly for both channels, which frames carry each party's
   own voice. It adapts to the call: a per-channel noise floor, a per-channel speech level
   (channel gains may differ by 20 dB or more) and a per-direction leak gain (how much of the
   other party's voice arrives on this channel), all estimated from the data.
3. :func:`ipus` turns a frame mask into inter-pausal units in seconds.

The decision rule
-----------------
Channel ``c`` at frame ``t`` is the speech of party ``c`` only if its speech-band energy
``e_c(t)`` (300-3400 Hz, dB) is

* above the channel's noise floor by ``snr_db`` (hiss and hum set the floor, they do not
  trigger speech; the floor is the 5th percentile of each ``noise_block_s`` block, interpolated,
  so it follows line noise that changes during the call),
* within ``dynamic_range_db`` of the channel's own speech level (the 90th percentile of its
  active frames). A headset or handset carries its own talker 20-50 dB above third people in
  the room, so distant crosstalk that shows up on both channels falls below this line,
* above what leaks from the other channel by ``leak_margin_db``: the leak prediction is the
  leak gain (``-bleed_db``) plus the other channel's loudest energy within ``+-leak_window_s``
  (absorbs a few ms of echo delay and some reverberation). The leak gain is measured from the
  frames where the other channel is strongly active: the lower quartile of the noise-corrected
  level difference, which is the pure-leak case as long as the two parties overlap less than
  three quarters of the time.

Onsets need the thresholds above; a region, once started, extends while the energy stays
within ``hysteresis_db`` of the floor/level thresholds and within ``leak_relax_db`` of the leak
threshold (double-threshold hysteresis, as in classic energy VADs). Isolated runs shorter
than ``min_speech_s`` are dropped.

Third talkers in the room reach both channels with one common envelope. Two joint rules use
the local correlation of the two channels' dB envelopes (+-``crosstalk_window_s``):
a frame of channel ``c`` is rejected when the other channel carries audible sound that is
neither its own party's speech nor ``c``'s leak and the envelopes correlate above
``crosstalk_corr``; and when both channels would call a correlated stretch speech while
neither comes within ``crosstalk_below_db`` of its own party's speech level, both are
rejected. A continuation frame (quieter than an onset) also needs the other channel to be
quiet or to carry its own party's speech.

Known limits: a long acoustic echo (network echo with > 30 ms delay) is not modelled; both
channels carrying the same signal (dual mono) yields no speech on either, which the report
should flag as identical channels; a gain change in the middle of a call is not tracked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.ndimage
import scipy.signal

from dsp.errors import ParameterError
from dsp.filters import bandpass_sos
from dsp.frames import HOP_S, frame_count, hop_samples, mask_to_segments

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Names of the rows of :func:`frame_features` output, in order.
FEATURE_NAMES: tuple[str, ...] = ("band_db", "full_db")
BAND_LOW_HZ = 300.0
BAND_HIGH_HZ = 3400.0
#: Energies are floored here (dBFS of mean square) so digital silence stays finite.
ENERGY_FLOOR_DB = -120.0
_EPS = 10.0 ** (ENERGY_FLOOR_DB / 10.0)


@dataclass(frozen=True)
class SpeechActivity:
    """Result of :func:`detect_speech`.

    Attributes
    ----------
    speech : ndarray of bool, shape (2, T)
        Own speech of party 0 (agent) and party 1 (customer) per 10 ms frame, bleed removed.
    noise_floor_db : ndarray, shape (2,)
        Speech-band noise floor per channel, dBFS (mean square); NaN for an empty input.
    bleed_db : ndarray, shape (2,)
        For channel ``c``: by how many dB the OTHER party's voice is attenuated on channel
        ``c``, measured against party ``c``'s own voice on channel ``c`` (a
        signal-to-crosstalk ratio: ``speech_level_db[c] - (speech_level_db[o] +
        leak_gain_db[c])``; channel gains cancel, the talkers' natural loudness difference
        does not). If party ``c`` never speaks: ``-leak_gain_db[c]``. Small values (< 10 dB)
        mean heavy bleed. NaN when not estimable (the other party hardly speaks, or its leak
        stays under channel ``c``'s noise floor).
    speech_level_db : ndarray, shape (2,)
        Level of each party's own speech (90th percentile of speech-band energy over its
        speech frames), dBFS; NaN when the party never speaks.
    leak_gain_db : ndarray, shape (2,)
        Leak gain used for the decision on channel ``c``, dB: the other channel's energy plus
        this predicts the other party's leak on channel ``c`` (includes the channels' gain
        difference, so it can be positive). An upper bound when the leak is under the noise
        floor; NaN when the other channel never carries its own party's speech.
    """

    speech: BoolArray
    noise_floor_db: FloatArray
    bleed_db: FloatArray
    speech_level_db: FloatArray
    leak_gain_db: FloatArray

    @property
    def n_frames(self) -> int:
        """Number of 10 ms frames ``T``."""
        return int(self.speech.shape[1])

    @property
    def talk_time_s(self) -> FloatArray:
        """Seconds of own speech per party, shape (2,)."""
        return self.speech.sum(axis=1).astype(np.float64) * HOP_S


def _window_energy_db(x: npt.NDArray[np.float32], hop: int, n_frames: int) -> FloatArray:
    """Mean-square energy in dB over 3 hops centred on each frame (frame ``i`` at ``i*hop``)."""
    half = hop // 2
    # Block j covers samples [j*hop - half, j*hop - half + hop): centred on frame j.
    need = (n_frames + 1) * hop
    padded = np.zeros(need, dtype=np.float32)
    seg = x[: max(0, need - half)]
    padded[half : half + seg.shape[0]] = seg
    blocks = np.square(padded, dtype=np.float32).reshape(-1, hop).sum(axis=1, dtype=np.float64)
    blocks = blocks[: n_frames + 1]
    # Frame i: blocks i-1, i, i+1 (30 ms at a 10 ms hop).
    window = blocks[:n_frames].copy()
    window[1:] += blocks[: n_frames - 1]
    window += blocks[1 : n_frames + 1]
    counts = np.full(n_frames, 3.0 * hop)
    counts[0] = 2.0 * hop
    return np.asarray(10.0 * np.log10(np.maximum(window / counts, _EPS)), dtype=np.float64)


def frame_features(
    y: npt.ArrayLike, sr: int, *, names: Sequence[str] = FEATURE_NAMES
) -> npt.NDArray[np.float32]:
    """Per-frame log-energy features of one channel on the 10 ms clock.

    Parameters
    ----------
    y : array_like, shape (n,)
        One channel, float samples in [-1, 1].
    sr : int
        Sample rate in Hz (8000-48000).
    names : sequence of str, optional
        Which rows to compute, in this order (names from :data:`FEATURE_NAMES`, default all).
        :func:`detect_speech` reads only ``band_db``: a long call keeps just that row.

    Returns
    -------
    ndarray of float32, shape (F, T)
        ``F = len(names)``, ``T = dsp.frames.frame_count(n, sr)``; the rows:
        ``band_db`` mean-square energy (dBFS) of the 300-3400 Hz band (4th-order Butterworth
        band-pass, hum and hiss outside the telephone band removed) and ``full_db`` of the raw
        signal, both over 30 ms centred on the frame (frame-local: 15 ms either side, plus the
        band-pass filter's few-ms memory). Digital silence gives ``ENERGY_FLOOR_DB``.

    Notes
    -----
    One ``sosfilt`` pass and a reshape-sum per call, float32 throughout: about 0.3 s of CPU for
    an hour of 8 kHz audio.
    """
    if not isinstance(sr, int | np.integer) or not 8000 <= int(sr) <= 192000:
        raise ParameterError(f"sr must be an integer sample rate in 8000-192000 Hz, got {sr!r}")
    unknown = [name for name in names if name not in FEATURE_NAMES]
    if unknown or isinstance(names, str):
        raise ParameterError(
            f"names must be a sequence of {', '.join(FEATURE_NAMES)}, got {names!r}"
        )
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"y must be one channel of shape (n,), got shape {x.shape}")
    sr = int(sr)
    hop = hop_samples(sr)
    n_frames = frame_count(x.shape[0], sr)
    if not np.isfinite(x).all():
        x = np.where(np.isfinite(x), x, np.float32(0.0))
    out = np.empty((len(names), n_frames), dtype=np.float32)
    for row, name in enumerate(names):
        if name == "band_db":
            high = min(BAND_HIGH_HZ, 0.45 * sr)
            sos = bandpass_sos(float(BAND_LOW_HZ), float(high), sr).copy()  # sosfilt: writable
            band = scipy.signal.sosfilt(sos, x).astype(np.float32, copy=False) if x.size else x
            out[row] = _window_energy_db(band, hop, n_frames)
        else:
            out[row] = _window_energy_db(x, hop, n_frames)
    return out


def _moving_max(x: FloatArray, radius: int) -> FloatArray:
    """Maximum over ``x[t - radius : t + radius + 1]`` (edges clipped); NaN-free input."""
    if radius <= 0 or x.size == 0:
        return x.copy()
    # van Herk/Gil-Werman running maximum: O(n) whatever the radius; "nearest" = edge padding
    out = scipy.ndimage.maximum_filter1d(x, 2 * radius + 1, mode="nearest")
    return np.asarray(out, dtype=np.float64)


# Frames per slice of the call-wide decisions: the elementwise steps of detect_speech run on
# slices of this many frames, so its working memory does not grow with the call.
_SLICE_FRAMES = 1 << 16


def _floor_points(
    energy: npt.NDArray[np.floating], valid: BoolArray, *, percentile: float, block: int
) -> tuple[FloatArray, FloatArray]:
    """Noise floor of one channel: ``percentile`` of each ``block`` of frames (dB).

    Returns interpolation points ``(frames, levels)``: the floor at frame ``t`` is
    ``np.interp(t, frames, levels)`` (block centres; one point when no block has enough
    valid frames). Blocks are read a slice at a time (each block's percentile is its own).
    """
    n = energy.shape[0]
    n_blocks = max(1, int(np.ceil(n / block)))
    levels = np.full(n_blocks, np.nan)
    ok = np.zeros(n_blocks, dtype=bool)
    group = max(1, _SLICE_FRAMES // block)
    for g0 in range(0, n_blocks, group):
        g1 = min(n_blocks, g0 + group)
        lo, hi = g0 * block, min(n, g1 * block)
        padded = np.full((g1 - g0) * block, np.nan)
        padded[: hi - lo] = np.where(valid[lo:hi], energy[lo:hi].astype(np.float64), np.nan)
        rows = padded.reshape(g1 - g0, block)
        counts = np.sum(np.isfinite(rows), axis=1)
        ok_g = counts >= max(1, block // 10)
        ok[g0:g1] = ok_g
        if ok_g.any():
            levels[g0:g1][ok_g] = np.nanpercentile(rows[ok_g], percentile, axis=1)
    if not ok.any():
        value = _nanpercentile(energy[valid].astype(np.float64), percentile)
        return np.zeros(1), np.array([value if np.isfinite(value) else ENERGY_FLOOR_DB])
    starts = np.arange(n_blocks) * block
    centres = (starts + np.minimum(starts + block, n)) / 2.0
    return centres[ok], levels[ok]


def _local_correlation(energy: FloatArray, *, radius: int) -> FloatArray:
    """Pearson correlation of the two rows of ``energy`` (2, T) over ``t +- radius`` frames."""
    if energy.shape[1] == 0 or radius <= 0:
        return np.zeros(energy.shape[1])
    size = 2 * radius + 1
    a, b = energy[0], energy[1]

    def mean(x: FloatArray) -> FloatArray:
        return np.asarray(scipy.ndimage.uniform_filter1d(x, size, mode="nearest"))

    # Same arithmetic as ``mean(a * b) - ma * mb`` etc., with in-place steps so that a
    # long call needs a few (T,) temporaries, not a dozen.
    ma, mb = mean(a), mean(b)
    tmp = np.multiply(a, b)
    cov = mean(tmp)
    cov -= np.multiply(ma, mb, out=tmp)
    np.multiply(a, a, out=tmp)
    va = mean(tmp)
    va -= np.multiply(ma, ma, out=tmp)
    np.maximum(va, 0.0, out=va)
    del ma
    np.multiply(b, b, out=tmp)
    vb = mean(tmp)
    vb -= np.multiply(mb, mb, out=tmp)
    np.maximum(vb, 0.0, out=vb)
    del mb
    # Flat envelopes (variance under 1 dB^2) carry no evidence of a common source.
    ok = (va > 1.0) & (vb > 1.0)
    denom = np.multiply(va, vb, out=tmp)
    del va, vb
    np.sqrt(denom, out=denom)
    denom[~ok] = 1.0
    cov /= denom
    cov[~ok] = 0.0
    return cov


def _runs(mask: BoolArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and end (exclusive) frame indices of the runs of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def _fill_runs(n: int, starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]) -> BoolArray:
    """A length-``n`` mask that is True on ``[starts[k], ends[k])`` for every k (vectorised)."""
    delta = np.zeros(n + 1, dtype=np.int32)
    np.add.at(delta, starts, 1)
    np.add.at(delta, ends, -1)
    return np.asarray(np.cumsum(delta, dtype=np.int32)[:n] > 0, dtype=bool)


def _hysteresis(low: BoolArray, high: BoolArray) -> BoolArray:
    """Runs of ``low`` that contain at least one ``high`` frame."""
    starts, ends = _runs(low)
    counts = np.zeros(low.shape[0] + 1, dtype=np.int32)
    np.cumsum(high & low, dtype=np.int32, out=counts[1:])
    keep = counts[ends] - counts[starts] > 0
    return _fill_runs(low.shape[0], starts[keep], ends[keep])


def _drop_short(mask: BoolArray, min_frames: int) -> BoolArray:
    """``mask`` without its runs shorter than ``min_frames``."""
    starts, ends = _runs(mask)
    keep = ends - starts >= min_frames
    return _fill_runs(mask.shape[0], starts[keep], ends[keep])


def _db_to_power(db: FloatArray | float) -> FloatArray:
    return np.asarray(10.0 ** (np.asarray(db, dtype=np.float64) / 10.0), dtype=np.float64)


def _nanpercentile(x: FloatArray, q: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if x.size else float("nan")


def detect_speech(
    features: npt.ArrayLike,
    *,
    snr_db: float = 10.0,
    dynamic_range_db: float = 25.0,
    leak_margin_db: float = 10.0,
    hysteresis_db: float = 10.0,
    leak_window_s: float = 0.02,
    noise_percentile: float = 5.0,
    min_speech_s: float = 0.05,
    noise_block_s: float = 10.0,
    min_separation_db: float = 6.0,
    leak_relax_db: float = 6.0,
    crosstalk_corr: float = 0.8,
    crosstalk_window_s: float = 0.15,
    crosstalk_below_db: float = 10.0,
) -> SpeechActivity:
    """Own-speech masks of both parties, with the other party's bleed and room crosstalk removed.

    Parameters
    ----------
    features : array_like, shape (2, F, T)
        :func:`frame_features` of channel 0 and channel 1, stacked (``F >= 1``; row 0, the
        speech-band energy in dB, drives the decision). NaN frames count as silence.
    snr_db : float
        Onset threshold above the channel's noise floor, dB.
    dynamic_range_db : float
        Onset threshold below the channel's own speech level, dB: quieter sound is taken as
        distant crosstalk (third people in the room), not this party.
    leak_margin_db : float
        How far above the predicted leak from the other channel an onset must be, dB.
    hysteresis_db : float
        Once started, speech continues while the energy stays within this many dB below the
        floor/level onset thresholds (never less than ``snr_db / 2`` above the floor).
    leak_window_s : float
        The predicted leak uses the other channel's maximum energy within +- this many seconds
        (echo delay, reverberation).
    noise_percentile : float
        Percentile of the frame energies taken as the noise floor, per block.
    noise_block_s : float
        The floor is measured in blocks of this many seconds and interpolated between block
        centres, so a change of line noise during the call moves the thresholds with it.
    min_speech_s : float
        Runs of speech shorter than this are dropped (clicks).
    min_separation_db : float
        The two estimated leak gains must sum below ``-min_separation_db``; otherwise one
        channel only ever carries the other's leak and the positive estimate is discarded.
    leak_relax_db : float
        Inside a speech region the leak threshold is relaxed by this many dB (keeps a party's
        speech through overlap with the other party's louder speech).
    crosstalk_corr : float
        Local envelope correlation above which the two channels are taken to carry one
        common source (third talker), in -1..1; 1.0 disables the crosstalk rules.
    crosstalk_window_s : float
        Half-width of the envelope-correlation window, seconds.
    crosstalk_below_db : float
        A common-envelope stretch that stays this many dB under BOTH parties' speech levels
        is a third talker on both channels.

    Returns
    -------
    SpeechActivity
        ``speech`` (2, T) bool plus the per-channel estimates used.

    Raises
    ------
    ParameterError
        If ``features`` is not (2, F, T) or a parameter is out of range.
    """
    # Only row 0 drives the decision: no float64 copy of the whole (2, F, T) array.
    feats = np.asarray(features)
    if not np.issubdtype(feats.dtype, np.floating):
        feats = feats.astype(np.float64)
    if feats.ndim != 3 or feats.shape[0] != 2 or feats.shape[1] < 1:
        raise ParameterError(
            f"features must have shape (2, F, T) (frame_features of both channels stacked), "
            f"got {feats.shape}"
        )
    for name, value, lo in (
        ("snr_db", snr_db, 0.0),
        ("dynamic_range_db", dynamic_range_db, 1.0),
        ("leak_margin_db", leak_margin_db, 0.0),
        ("hysteresis_db", hysteresis_db, 0.0),
        ("leak_window_s", leak_window_s, 0.0),
        ("min_speech_s", min_speech_s, 0.0),
        ("noise_block_s", noise_block_s, HOP_S),
        ("min_separation_db", min_separation_db, 0.0),
        ("leak_relax_db", leak_relax_db, 0.0),
        ("crosstalk_window_s", crosstalk_window_s, 0.0),
        ("crosstalk_below_db", crosstalk_below_db, 0.0),
    ):
        if not np.isfinite(value) or value < lo:
            raise ParameterError(f"{name} must be a finite number >= {lo}, got {value}")
    if not -1.0 <= crosstalk_corr <= 1.0:
        raise ParameterError(f"crosstalk_corr must be in -1..1, got {crosstalk_corr}")
    if not 0.0 <= noise_percentile <= 50.0:
        raise ParameterError(f"noise_percentile must be in 0-50, got {noise_percentile}")

    n_frames = feats.shape[2]
    raw = feats[:, 0, :]
    valid = np.isfinite(raw)
    nan2 = np.full(2, np.nan)
    if n_frames == 0 or not valid.any():
        return SpeechActivity(
            speech=np.zeros((2, n_frames), dtype=bool),
            noise_floor_db=nan2.copy(),
            bleed_db=nan2.copy(),
            speech_level_db=nan2.copy(),
            leak_gain_db=nan2.copy(),
        )
    # Energies stay in the caller's dtype (float32 tracks: no float64 copy of the call); each
    # slice is taken to float64 before any arithmetic, so the numbers are those of a float64
    # computation on the whole call.
    energy = raw if valid.all() else np.where(valid, raw, raw.dtype.type(ENERGY_FLOOR_DB))
    del raw
    slices = [(a, min(a + _SLICE_FRAMES, n_frames)) for a in range(0, n_frames, _SLICE_FRAMES)]

    def e64(a: int, b: int) -> FloatArray:
        return np.asarray(energy[:, a:b], dtype=np.float64)

    block = max(1, int(round(noise_block_s / HOP_S)))
    floor_pts = [
        _floor_points(energy[c], valid[c], percentile=noise_percentile, block=block) for c in (0, 1)
    ]

    def floor_at(a: int, b: int) -> FloatArray:
        frames = np.arange(a, b)
        return np.stack([np.interp(frames, *floor_pts[c]) for c in (0, 1)])

    floor = np.array([np.median(floor_at(0, n_frames)[c]) for c in (0, 1)])
    # Frames clearly above the floor: candidates for either own speech or leak.
    active = np.zeros((2, n_frames), dtype=bool)
    for a, b in slices:
        active[:, a:b] = (e64(a, b) > floor_at(a, b) + snr_db) & valid[:, a:b]
    # A first speech level from all active frames; refined after leak removal.
    level0 = np.array(
        [_nanpercentile(energy[c][active[c]].astype(np.float64), 90.0) for c in (0, 1)]
    )

    leak_radius = int(round(leak_window_s / HOP_S))

    def other_max(c: int, a: int, b: int) -> FloatArray:
        """The OTHER channel's loudest energy within +-leak_radius of frames a..b-1."""
        o = 1 - c
        lo, hi = max(0, a - leak_radius), min(n_frames, b + leak_radius)
        wide = _moving_max(np.asarray(energy[o, lo:hi], dtype=np.float64), leak_radius)
        return wide[a - lo : b - lo]

    leak_gain = nan2.copy()
    observable = np.zeros(2, dtype=bool)
    for c in (0, 1):
        o = 1 - c
        if not np.isfinite(level0[o]):
            continue
        # Frames where the other party is strongly active (well above its floor, near its level):
        # the noise-corrected leak power on channel c relative to the other channel's power.
        diffs, above_floor = [], []
        for a, b in slices:
            e, fl = e64(a, b), floor_at(a, b)
            strong = active[o, a:b] & (e[o] > np.maximum(fl[o] + snr_db, level0[o] - 15.0))
            floor_c = fl[c][strong]
            excess = _db_to_power(e[c][strong]) - _db_to_power(floor_c)
            excess_db = 10.0 * np.log10(np.maximum(excess, _EPS))
            diffs.append(np.where(excess > 0, excess_db, floor_c) - e[o][strong])
            above_floor.append(e[c][strong] - floor_c)
        diff = np.concatenate(diffs)
        if diff.size < 20:
            continue
        leak_gain[c] = float(np.percentile(diff, 25.0))
        observable[c] = float(np.median(np.concatenate(above_floor))) > 3.0
        del diffs, above_floor, diff
    # Consistency: for two real talkers the two leak gains sum to minus both attenuations
    # (channel gains cancel), well below 0 dB. A sum near 0 dB means the "strong" frames of one
    # channel are only the other's leak (that party never talks): its partner's estimate is
    # then meaningless (positive) and is dropped. Dual mono (both near 0 dB) keeps both.
    if (
        np.all(np.isfinite(leak_gain))
        and leak_gain.sum() > -min_separation_db
        and abs(leak_gain[0] - leak_gain[1]) > min_separation_db
    ):
        leak_gain[int(np.argmax(leak_gain))] = np.nan

    def leak_thr(c: int, a: int, b: int) -> FloatArray:
        if np.isfinite(leak_gain[c]):
            return np.asarray(leak_gain[c] + other_max(c, a, b) + leak_margin_db)
        return np.full(b - a, -np.inf)

    high = np.zeros((2, n_frames), dtype=bool)
    low = np.zeros((2, n_frames), dtype=bool)
    own_level = nan2.copy()
    for c in (0, 1):
        own_energy = []
        for a, b in slices:
            e_c = e64(a, b)[c]
            own_energy.append(e_c[active[c, a:b] & (e_c > leak_thr(c, a, b))])
        lvl = _nanpercentile(np.concatenate(own_energy), 90.0)
        del own_energy
        if not np.isfinite(lvl):
            continue
        own_level[c] = lvl
        # Onset: above floor + snr, within dynamic_range_db of the speech level, above leak.
        # Continuation: the floor and level thresholds relax by hysteresis_db (the floor one
        # by at most half of snr_db); the leak threshold never relaxes.
        for a, b in slices:
            e_c, fl_c, lt = e64(a, b)[c], floor_at(a, b)[c], leak_thr(c, a, b)
            onset_thr = np.maximum(fl_c + snr_db, lvl - dynamic_range_db)
            cont_thr = np.maximum(fl_c + 0.5 * snr_db, onset_thr - hysteresis_db)
            high[c, a:b] = valid[c, a:b] & (e_c > np.maximum(onset_thr, lt))
            low[c, a:b] = valid[c, a:b] & (e_c > np.maximum(cont_thr, lt - leak_relax_db))
    del active

    min_frames = int(round(min_speech_s / HOP_S))
    first = np.stack([_hysteresis(low[c], high[c]) for c in (0, 1)])
    # Room crosstalk from third people reaches both channels at once. A continuation frame
    # (quieter than an onset) is kept only if the other channel is quiet there, or carries
    # its own party's speech (whose leak the leak threshold already handles).
    # Third talkers in the room reach both channels at once, with one common envelope.
    # (a) Where the other channel carries sound that is neither its party's speech nor our
    #     leak and the envelopes move together, our sound is that third talker too.
    # (b) Where the other channel carries its own sound (not our leak) with the same envelope
    #     while we stay far under our own party's speech level (syllable peaks within
    #     +-window), we carry a third talker, or the other party louder than its usual leak.
    radius = int(round(crosstalk_window_s / HOP_S))
    cont = np.zeros((2, n_frames), dtype=bool)
    onset = np.zeros((2, n_frames), dtype=bool)
    for a, b in slices:
        e, fl = e64(a, b), floor_at(a, b)
        quiet = e < fl + snr_db
        audible = e > fl + 0.5 * snr_db
        not_leak = audible & (e > np.stack([leak_thr(c, a, b) for c in (0, 1)]))
        unexplained = not_leak & ~first[:, a:b]
        # envelope correlation over +-radius: computed on the slice plus radius frames of
        # context each side (the running mean then differs from a whole-call one by rounding
        # only, ~1e-12)
        lo, hi = max(0, a - radius), min(n_frames, b + radius)
        envelope = np.maximum(e64(lo, hi), floor_at(lo, hi) + 0.5 * snr_db)
        common = _local_correlation(envelope, radius=radius)[a - lo : b - lo] > crosstalk_corr
        for c in (0, 1):
            o = 1 - c
            peak = _moving_max(np.asarray(energy[c, lo:hi], dtype=np.float64), radius)
            peak_rel = peak[a - lo : b - lo] - own_level[c]
            far = np.where(np.isfinite(peak_rel), peak_rel, -np.inf) < -crosstalk_below_db
            third = common & (unexplained[o] | (not_leak[o] & far))
            cont[c, a:b] = low[c, a:b] & (high[c, a:b] | quiet[o] | first[o, a:b]) & ~third
            onset[c, a:b] = high[c, a:b] & ~third
    del low, high, first
    speech = np.zeros((2, n_frames), dtype=bool)
    level = nan2.copy()
    for c in (0, 1):
        mask = _drop_short(_hysteresis(cont[c], onset[c]), min_frames)
        speech[c] = mask
        if mask.any():
            level[c] = _nanpercentile(energy[c][mask].astype(np.float64), 90.0)

    # Bleed as a signal-to-crosstalk ratio, which channel gains do not affect: the other
    # party's voice on channel c (its level on its own channel plus the leak gain) against
    # party c's own voice on channel c. Without own speech on c, against the other's level.
    bleed = nan2.copy()
    for c in (0, 1):
        o = 1 - c
        if not (observable[c] and np.isfinite(leak_gain[c])):
            continue
        if np.isfinite(level[c]) and np.isfinite(level[o]):
            bleed[c] = level[c] - (level[o] + leak_gain[c])
        else:
            bleed[c] = -leak_gain[c]

    return SpeechActivity(
        speech=speech,
        noise_floor_db=floor.astype(np.float64),
        bleed_db=bleed,
        speech_level_db=level,
        leak_gain_db=leak_gain,
    )


def speech_possible(
    band_db: npt.ArrayLike,
    *,
    first_frame: int = 0,
    snr_db: float = 10.0,
    noise_percentile: float = 5.0,
    noise_block_s: float = 10.0,
    margin_db: float = 0.5,
) -> BoolArray:
    """Frames of a stretch of one channel that :func:`detect_speech` may call speech.

    A cheap, local pre-decision for the costly per-frame work (pitch candidates): speech
    frames must lie ``snr_db / 2`` above the channel's noise floor, and the floor of
    :func:`detect_speech` (the ``noise_percentile`` of each ``noise_block_s`` block of the
    call, interpolated between block centres) is known from the stretch alone wherever the
    two blocks around a frame lie wholly inside it: it is at least the lower of their two
    levels. Frames whose floor cannot be bounded from the stretch (near its ends) are kept.

    Parameters
    ----------
    band_db : array_like, shape (T,)
        Row ``band_db`` of :func:`frame_features` for call frames ``first_frame`` ..
        ``first_frame + T - 1``, exactly as in the whole call's features.
    first_frame : int
        Call frame index of ``band_db[0]``.
    snr_db, noise_percentile, noise_block_s : float
        As passed to :func:`detect_speech` (its defaults by default).
    margin_db : float
        Safety margin under the bound, dB (>= 0).

    Returns
    -------
    ndarray of bool, shape (T,)
        True where the frame may be speech: a superset of that channel's
        ``detect_speech(...).speech`` on these frames. NaN frames (never speech) are False.
    """
    e = np.asarray(band_db, dtype=np.float64)
    if e.ndim != 1:
        raise ParameterError(f"band_db must have shape (T,), got {e.shape}")
    if not (np.isfinite(margin_db) and margin_db >= 0):
        raise ParameterError(f"margin_db must be a finite number >= 0, got {margin_db}")
    n = e.shape[0]
    block = max(1, int(round(noise_block_s / HOP_S)))
    j0 = -(-first_frame // block)  # blocks j0 .. j1 - 1 lie wholly inside the stretch
    j1 = (first_frame + n) // block
    if j1 <= j0:
        return ~np.isnan(e)
    rows = e[j0 * block - first_frame : j1 * block - first_frame].reshape(j1 - j0, block)
    full = np.isfinite(rows).all(axis=1)  # such a block's level is exactly detect_speech's
    levels = np.full(j1 - j0, np.nan)
    if full.any():
        levels[full] = np.percentile(rows[full], noise_percentile, axis=1)
    frame = first_frame + np.arange(n)
    j = frame // block
    # the other block centre around the frame (left of block 0's centre: block 0 alone)
    partner = np.where(frame < j * block + block / 2.0, j - 1, j + 1)
    partner = np.maximum(partner, 0)

    def level_of(idx: npt.NDArray[np.int64]) -> FloatArray:
        out = np.full(n, np.nan)
        inside = (idx >= j0) & (idx < j1)
        out[inside] = levels[idx[inside] - j0]
        return out

    bound = np.minimum(level_of(j), level_of(partner))
    known = np.isfinite(bound)
    gate = np.ones(n, dtype=bool)
    gate[known] = e[known] > bound[known] + 0.5 * snr_db - margin_db
    gate &= ~np.isnan(e)
    return gate


def ipus(
    speech_mask: npt.ArrayLike,
    *,
    min_pause_s: float = 0.2,
    min_ipu_s: float = 0.1,
) -> FloatArray:
    """Inter-pausal units of one party from a per-frame speech mask.

    Parameters
    ----------
    speech_mask : array_like of bool, shape (T,)
        One party's speech per 10 ms frame (a row of :attr:`SpeechActivity.speech`).
    min_pause_s : float
        Pauses shorter than this are bridged (the IPU continues), seconds.
    min_ipu_s : float
        After bridging, units shorter than this are dropped (blips), seconds.

    Returns
    -------
    ndarray, shape (k, 2)
        ``[start_s, end_s]`` per IPU, sorted; frame ``i`` spans ``[i, i+1) * HOP_S``.
        An empty mask gives shape (0, 2).
    """
    if not np.isfinite(min_pause_s) or min_pause_s < 0:
        raise ParameterError(f"min_pause_s must be a finite number >= 0 s, got {min_pause_s}")
    if not np.isfinite(min_ipu_s) or min_ipu_s < 0:
        raise ParameterError(f"min_ipu_s must be a finite number >= 0 s, got {min_ipu_s}")
    mask = np.asarray(speech_mask)
    if mask.ndim != 1:
        raise ParameterError(f"speech_mask must have shape (T,), got {mask.shape}")
    segs = mask_to_segments(mask.astype(bool))
    if segs.shape[0] == 0:
        return segs
    # Bridge: merge a segment into the previous one when the gap is shorter than min_pause_s.
    # Compare in whole frames to avoid float round-off at the threshold.
    starts = np.rint(segs[:, 0] / HOP_S).astype(np.int64)
    ends = np.rint(segs[:, 1] / HOP_S).astype(np.int64)
    min_pause_frames = min_pause_s / HOP_S - 1e-9
    gaps = starts[1:] - ends[:-1]
    new_group = np.concatenate([[True], gaps >= min_pause_frames])
    group = np.cumsum(new_group) - 1
    merged_starts = starts[new_group]
    merged_ends = np.zeros(merged_starts.shape[0], dtype=np.int64)
    np.maximum.at(merged_ends, group, ends)
    keep = (merged_ends - merged_starts) >= min_ipu_s / HOP_S - 1e-9
    out = np.column_stack([merged_starts[keep], merged_ends[keep]]).astype(np.float64) * HOP_S
    return out.reshape(-1, 2)
