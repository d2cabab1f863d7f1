"""Speaking rate without a transcript: syllable nuclei from intensity peaks.

The method follows de Jong & Wempe (2009): a syllable nucleus is an intensity peak that

1. stands out above a level relative to the speaker's own intensity distribution (so channel
   gains, which differ by tens of dB between call legs, do not matter),
2. is separated from neighbouring peaks by dips of at least ``min_dip_db`` on both sides
   (the peak's *prominence*), and
3. is voiced (the pitch tracker found an f0 there).

Nothing here depends on the language or needs more than the 300-3400 Hz telephone band.

The work is split so that a pipeline can run it block by block on long calls:

- :func:`syllable_intensity_db` is frame-local (each 10 ms frame uses well under 0.1 s of
  audio either side): an intensity contour in a vowel band, smoothed, on the
  :mod:`dsp.frames` clock;
- :func:`syllable_nuclei` runs once per speaker on the whole track (it needs the speaker's
  intensity distribution) and returns frame indices of nuclei;
- :func:`phonation_frames` marks the speech frames that sound (the denominator of the
  articulation rate), from the same intensity track and distribution;
- :mod:`dsp.measures` turns nuclei into syllable counts and rates over any set of spans
  (call, turn, IPU, window), with one definition of each rate.

References
----------
N. H. de Jong and T. Wempe, "Praat script to detect syllable nuclei and measure speech rate
automatically", Behavior Research Methods 41(2), 385-390, 2009.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.ndimage
import scipy.signal

from dsp.errors import ParameterError
from dsp.filters import bandpass_sos
from dsp.frames import HOP_S, frame_count, hop_samples

__all__ = [
    "phonation_frames",
    "sonority_db",
    "syllable_intensity_db",
    "syllable_nuclei",
]

# Power floor (re full scale) so digital silence gives a finite level: -120 dB.
_POWER_FLOOR = 1e-12
# Frames of speech needed before the speaker's intensity distribution means anything.
_MIN_SPEECH_FRAMES = 10
# Nuclei, and intervals between nuclei of one speech run, needed before the first pass's
# syllable period is trusted for adapting the smoothing.
_MIN_ADAPT_NUCLEI = 8
_MIN_ADAPT_INTERVALS = 5


def _check_1d(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be one channel, shape (n,), got shape {arr.shape}")
    return arr


def syllable_intensity_db(
    y: npt.ArrayLike,
    sr: int,
    *,
    band_hz: tuple[float, float] = (300.0, 2500.0),
    smooth_s: float = 0.0,
) -> npt.NDArray[np.float32]:
    """Intensity contour for syllable-nucleus detection, one value per 10 ms frame.

    The signal is band-passed to a vowel band (first and second formants; fricative and
    low-frequency hum energy are mostly outside it), squared, averaged over each frame's
    10 ms hop (centred on the frame, as in :mod:`dsp.frames`), smoothed with a Hann window
    of ``smooth_s`` and expressed in dB re full scale.

    Parameters
    ----------
    y : array_like, shape (n,)
        One channel of audio, float samples in [-1, 1]. Non-finite samples count as 0.
    sr : int
        Sample rate in Hz (8000 and 16000 are typical).
    band_hz : tuple of float
        Pass band ``(low_hz, high_hz)`` of a 4th-order Butterworth band-pass. ``high_hz`` is
        capped at 0.45 * ``sr``. Must satisfy ``0 < low_hz < high_hz``.
    smooth_s : float
        Length of the Hann smoothing window in seconds, 0.02-0.15, or 0 (default: none).
        :func:`syllable_nuclei` smooths to the speaker's own syllable duration; a fixed
        smoothing here on top would not scale with tempo (with 0.03 s, 43 of 60 tempo
        ratios within 5 %; without, 47; ``python bench/rate_tempo.py``).
        Each frame then depends on about ``smooth_s / 2 + 0.005 s`` of audio either side,
        plus a few ms of filter memory, so the function is frame-local and may be run block
        by block with 0.1 s of context.

    Returns
    -------
    numpy.ndarray, shape (T,), float32
        Intensity in dB re full scale (a full-scale sine in the band is about -3 dB),
        floored at -120 dB; ``T = dsp.frames.frame_count(n, sr)``.

    Raises
    ------
    ParameterError
        If ``y`` is not 1-D, ``sr`` is not positive, or the band or smoothing is invalid.
    """
    x32 = _audio(y, sr)
    if not (smooth_s == 0.0 or 0.02 <= smooth_s <= 0.15):
        raise ParameterError(f"smooth_s must be 0 or within 0.02-0.15 s, got {smooth_s}")
    frame_power = _band_frame_power(x32, int(sr), band_hz)
    n_frames = frame_power.shape[0]
    smoothed = _smooth_power(frame_power, np.ones(n_frames, dtype=bool), smooth_s)
    level = 10.0 * np.log10(np.maximum(smoothed, 0.0) + _POWER_FLOOR)
    return level.astype(np.float32)


def sonority_db(
    y: npt.ArrayLike,
    sr: int,
    *,
    low_band_hz: tuple[float, float] = (300.0, 1000.0),
    high_band_hz: tuple[float, float] = (2000.0, 3400.0),
) -> npt.NDArray[np.float32]:
    """Vowel-likeness per 10 ms frame: energy in ``low_band_hz`` over ``high_band_hz``, dB.

    Vowels and other sonorants put most of their energy below 1 kHz, fricatives and bursts
    above 2 kHz: a syllable nucleus has a positive value. Each band's power is averaged
    over the 30 ms centred on the frame (frame-local, like :func:`syllable_intensity_db`);
    both bands fit the 300-3400 Hz telephone band (``high_hz`` is capped at 0.45 * ``sr``).

    Returns
    -------
    numpy.ndarray, shape (T,), float32
        ``10 log10(low / high)``; 0 dB where both bands are digital silence.
    """
    x32 = _audio(y, sr)
    bands = [_band_frame_power(x32, int(sr), band) for band in (low_band_hz, high_band_hz)]
    kernel = np.ones(3) / 3.0  # 30 ms: three 10 ms bins
    low, high = (np.convolve(b, kernel, mode="same") for b in bands)
    ratio = 10.0 * np.log10((low + _POWER_FLOOR) / (high + _POWER_FLOOR))
    return ratio.astype(np.float32)


def _audio(y: npt.ArrayLike, sr: int) -> npt.NDArray[np.float32]:
    """One channel as float32, non-finite samples as 0; ``sr`` checked."""
    x = _check_1d(y, "y")
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise ParameterError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
    x32 = np.asarray(x, dtype=np.float32)
    if x32.size and not np.isfinite(x32).all():
        x32 = np.where(np.isfinite(x32), x32, np.float32(0.0))
    return x32


def _band_frame_power(
    x32: npt.NDArray[np.float32], sr: int, band_hz: tuple[float, float]
) -> npt.NDArray[np.float64]:
    """Mean power per 10 ms frame of ``x32`` band-passed to ``band_hz`` (4th-order
    Butterworth; ``high_hz`` capped at 0.45 * ``sr``)."""
    low_hz, high_hz = float(band_hz[0]), min(float(band_hz[1]), 0.45 * sr)
    if not 0.0 < low_hz < high_hz:
        raise ParameterError(
            f"band_hz must satisfy 0 < low < high < 0.45 * sr ({0.45 * sr:.0f} Hz), "
            f"got {band_hz}; e.g. (300, 2500)"
        )
    sos = bandpass_sos(low_hz, high_hz, sr).copy()  # sosfilt wants it writable
    filtered = scipy.signal.sosfilt(sos, x32) if x32.size else np.zeros(0, np.float32)
    # Frame i is centred on sample i*hop: its bin is [i*hop - hop//2, i*hop - hop//2 + hop).
    return _frame_power(filtered, hop_samples(sr), frame_count(x32.shape[0], sr))


def _frame_power(
    filtered: npt.NDArray[np.floating], hop: int, n_frames: int
) -> npt.NDArray[np.float64]:
    """Mean power of each 10 ms bin centred on its frame (edge bins: over what they hold)."""
    n = filtered.shape[0]
    half = hop // 2
    total = n_frames * hop
    power = np.zeros(total, dtype=np.float32)
    seg = filtered[: max(0, total - half)]
    np.square(seg, out=power[half : half + seg.shape[0]])
    frame_power = power.reshape(n_frames, hop).sum(axis=1, dtype=np.float64) / hop
    covered = np.full(n_frames, hop, dtype=np.float64)
    if n_frames:
        covered[0] = min(hop - half, n)
    last_end = total - half
    if n_frames and last_end > n:
        covered[-1] = max(1, hop - (last_end - n))
    frame_power *= hop / np.maximum(covered, 1.0)
    return frame_power


def _smooth_power(
    power: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_], width_s: float
) -> npt.NDArray[np.float64]:
    """Hann-weighted moving average (full width ``width_s``) on the 10 ms grid.

    The kernel is ``cos^2(pi t / width_s)`` sampled at whole frames, so any width (not only
    multiples of 10 ms) is honoured. Invalid frames get no weight; edges are renormalised.
    """
    half = int(np.ceil(width_s / HOP_S / 2.0))
    if width_s <= 0 or half < 1:
        return np.where(valid, power, np.nan)
    offsets = np.arange(-half, half + 1, dtype=np.float64) * HOP_S
    kernel = np.where(np.abs(offsets) < width_s / 2, np.cos(np.pi * offsets / width_s) ** 2, 0.0)
    n = power.shape[0]
    # in place where possible: a handful of (T,) float64 arrays on an hour-long call
    num = np.convolve(np.where(valid, power, 0.0), kernel)[half : half + n]
    den = np.convolve(valid.astype(np.float64), kernel)[half : half + n]
    defined = den > 1e-9
    np.maximum(den, 1e-300, out=den)
    with np.errstate(invalid="ignore", divide="ignore"):
        num /= den
    del den
    num[~defined] = np.nan
    return num


def syllable_nuclei(
    intensity_db: npt.ArrayLike,
    *,
    voiced: npt.ArrayLike | None = None,
    speech: npt.ArrayLike | None = None,
    sonority: npt.ArrayLike | None = None,
    threshold_re_median_db: float = -6.0,
    silence_re_peak_db: float = -25.0,
    min_dip_db: float = 2.0,
    smooth_s: float = 0.05,
    min_separation_s: float = 0.06,
    adapt_to_rate: bool = True,
    reference_rate_syl_per_s: float = 4.5,
    max_adaptation: float = 2.0,
    voiced_tolerance_s: float = 0.05,
    min_sonority_db: float = 0.0,
) -> npt.NDArray[np.int64]:
    """Frame indices of syllable nuclei (de Jong & Wempe 2009), adapted to the speaker.

    The intensity track is smoothed (Hann window of ``smooth_s``, in the power domain) and
    a frame is a nucleus when it is a local maximum of the smoothed contour that

    - lies in ``speech``, has a voiced frame within ``voiced_tolerance_s`` and is sonorant
      (``sonority`` above ``min_sonority_db``);
    - is above ``threshold_re_median_db`` relative to the median intensity of the speaker's
      speech frames, and above ``silence_re_peak_db`` relative to their 99th percentile
      (both adapt to the channel gain, so scaling the audio changes nothing);
    - has a prominence of at least ``min_dip_db``: on both sides the contour dips at least
      that far below the peak before reaching a higher peak (or the end of the track);
    - is at least ``min_separation_s`` from a higher nucleus.

    With ``adapt_to_rate`` (default) the smoothing width and the minimum separation are
    then rescaled by ``reference_rate_syl_per_s * p`` (clipped to ``1 / max_adaptation ..
    max_adaptation``), where ``p`` is the first pass's syllable period: the median time
    between consecutive nuclei of one speech run (peak times refined to a fraction of a
    frame), and the nuclei are detected again. A fixed smoothing would merge syllables of
    fast speakers and split the long vowels of slow ones, compressing rate differences;
    scaling it with the speaker's own syllable period keeps measured rates proportional to
    true rates (the same speech at 0.8x or 1.25x tempo gives 0.8x or 1.25x the rate). The
    period, unlike nuclei per second of speech, needs neither the voice activity's edges
    (which do not follow tempo exactly) nor every nucleus: a missed or split one moves a
    median little, and missed syllables do not widen the smoothing that merged them (worst
    syllable-count ratio under ``sox tempo`` 0.082 off against 0.143 with nuclei per second,
    ``python bench/rate_tempo.py``; AMI meeting speakers 0.92-1.00 of their dictionary
    syllables against 0.87-0.92, ``python bench/rate_conversation.py``).

    Parameters
    ----------
    intensity_db : array_like, shape (T,)
        Intensity track in dB on the 10 ms clock, from :func:`syllable_intensity_db`.
        NaN frames carry no weight: the smoothing bridges short gaps of NaN, longer ones
        (wider than the smoothing) hold no nuclei.
    voiced : array_like of bool, shape (T,), optional
        Voicing per frame (the pitch track is not NaN). ``None`` skips the voicing check.
    sonority : array_like, shape (T,), optional
        :func:`sonority_db` of the channel. ``None`` skips the sonority check.
    speech : array_like of bool, shape (T,), optional
        This speaker's speech-activity mask. ``None`` treats every finite frame as speech;
        the threshold is then relative to the whole track, silences included.
    threshold_re_median_db : float
        Peak level needed, in dB relative to the median smoothed speech-frame intensity.
        -6 dB: unstressed and reduced syllables of conversation sit 2-6 dB below a
        speaker's median (at -2 dB, AMI meeting speakers lost 14-28 % of their dictionary
        syllables, 5-9 points more than at -6; read speech moved from 0.95 to 0.97-0.99 of
        its transcript; ``python bench/rate_conversation.py``, ``bench/rate_ljspeech.py``).
    silence_re_peak_db : float
        Peak level needed, in dB relative to the 99th percentile of smoothed speech-frame
        intensity (de Jong & Wempe's silence threshold); must be <= 0.
    min_dip_db : float
        Minimum dip on both sides of a peak, in dB (> 0; de Jong & Wempe use 2 dB).
    smooth_s : float
        Full width (s) of the Hann smoothing at the reference rate, 0-0.2 (0: none). The
        only smoothing of the contour (the intensity track comes unsmoothed), so all of it
        follows the speaker's rate.
    min_separation_s : float
        Minimum time between nuclei (s, >= 0) at the reference rate; of two closer peaks
        the higher wins.
    adapt_to_rate : bool
        Rescale ``smooth_s`` and ``min_separation_s`` to the speaker's own rate (see above).
    reference_rate_syl_per_s : float
        Syllable rate (1 / the median nucleus period) at which no rescaling happens (> 0).
    max_adaptation : float
        Largest rescaling factor either way (>= 1; 2 covers 2.2-9 syllables per second).
    voiced_tolerance_s : float
        How far (s, >= 0) the nearest voiced frame may be from the peak: the pitch track
        drops reduced and creaky nuclei of conversation (at 0.02 s an AMI meeting speaker
        kept 96 of 121 dictionary syllables; ``python bench/rate_conversation.py``). The
        wider reach also takes in fricatives and bursts next to a vowel, which the
        sonority check then removes.
    min_sonority_db : float
        Lowest :func:`sonority_db` of a nucleus (dB of low- over high-band energy).

    Returns
    -------
    numpy.ndarray, shape (k,), int64
        Sorted frame indices of nuclei; time of nucleus ``i`` is ``frames[i] * HOP_S``.
        Empty when there is too little speech (fewer than 10 speech frames).

    Raises
    ------
    ParameterError
        On shape mismatches or out-of-range parameters.
    """
    # a float64 copy (never the caller's array): it becomes the power track in place
    level = np.array(_check_1d(intensity_db, "intensity_db"), dtype=np.float64)
    n_frames = level.shape[0]
    voiced_mask = _optional_mask(voiced, n_frames, "voiced")
    if sonority is None:
        sonorant = np.ones(n_frames, dtype=bool)
    else:
        sonority_arr = np.asarray(sonority, dtype=np.float64)
        if sonority_arr.shape != (n_frames,):
            raise ParameterError(
                f"sonority must have shape ({n_frames},) like intensity_db, "
                f"got shape {sonority_arr.shape}"
            )
        sonorant = ~(sonority_arr <= min_sonority_db)  # NaN: no evidence either way
    speech_mask = _optional_mask(speech, n_frames, "speech")
    if not min_dip_db > 0:
        raise ParameterError(f"min_dip_db must be > 0 dB (2 dB is typical), got {min_dip_db}")
    if not silence_re_peak_db <= 0:
        raise ParameterError(
            f"silence_re_peak_db must be <= 0 dB (-25 dB is typical), got {silence_re_peak_db}"
        )
    if not (min_separation_s >= 0 and voiced_tolerance_s >= 0):
        raise ParameterError(
            "min_separation_s and voiced_tolerance_s must be >= 0 s, got "
            f"{min_separation_s} and {voiced_tolerance_s}"
        )
    if not 0 <= smooth_s <= 0.2:
        raise ParameterError(f"smooth_s must be within 0-0.2 s (0.04 is typical), got {smooth_s}")
    if not np.isfinite(threshold_re_median_db):
        raise ParameterError(f"threshold_re_median_db must be finite, got {threshold_re_median_db}")
    if not (np.isfinite(reference_rate_syl_per_s) and reference_rate_syl_per_s > 0):
        raise ParameterError(
            f"reference_rate_syl_per_s must be > 0 (4.5 is typical), got {reference_rate_syl_per_s}"
        )
    if not (np.isfinite(max_adaptation) and max_adaptation >= 1):
        raise ParameterError(f"max_adaptation must be >= 1 (1 = off), got {max_adaptation}")

    finite = np.isfinite(level)
    usable = finite if speech_mask is None else finite & speech_mask
    in_speech = np.ones(n_frames, dtype=bool) if speech_mask is None else speech_mask
    n_speech = int(np.count_nonzero(usable))
    if n_speech < _MIN_SPEECH_FRAMES:
        return np.zeros(0, dtype=np.int64)
    if voiced_mask is None:
        near_voiced = np.ones(n_frames, dtype=bool)
    else:  # a voiced frame within the tolerance (a running maximum of the 0/1 mask)
        reach = int(round(voiced_tolerance_s / HOP_S))
        near_voiced = (
            scipy.ndimage.maximum_filter1d(
                voiced_mask.view(np.uint8), 2 * reach + 1, mode="constant", cval=0
            )
            > 0
        )
    # power = 10 ** (level / 10), 0 where NaN: computed in place of the float64 copy (the
    # non-finite frames come out NaN or inf and are zeroed once, at the end)
    power = level
    power /= 10.0
    np.power(10.0, power, out=power)
    power[~finite] = 0.0

    def detect(scale: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        contour = _smooth_power(power, finite, smooth_s * scale)
        defined = np.isfinite(contour)
        # 10 log10(smoothed + floor), 0 + floor where undefined: in place
        contour[~defined] = 0.0
        contour += _POWER_FLOOR
        np.log10(contour, out=contour)
        contour *= 10.0
        speech_levels = contour[usable]
        median_db = float(np.median(speech_levels))
        top_db = float(np.quantile(speech_levels, 0.99))
        threshold_db = max(median_db + threshold_re_median_db, top_db + silence_re_peak_db)
        distance = max(1, int(round(min_separation_s * scale / HOP_S)))
        peaks, _ = scipy.signal.find_peaks(contour, prominence=min_dip_db, distance=distance)
        keep = in_speech[peaks] & defined[peaks] & near_voiced[peaks] & sonorant[peaks]
        keep &= contour[peaks] > threshold_db
        return peaks[keep].astype(np.int64), contour

    peaks, contour = detect(1.0)
    period_s = _syllable_period_s(peaks, contour, in_speech)
    if adapt_to_rate and max_adaptation > 1 and period_s is not None:
        scale = float(
            np.clip(reference_rate_syl_per_s * period_s, 1 / max_adaptation, max_adaptation)
        )
        peaks, _ = detect(scale)
    return peaks


def _syllable_period_s(
    peaks: npt.NDArray[np.int64], contour: npt.NDArray[np.float64], in_speech: npt.NDArray[np.bool_]
) -> float | None:
    """Median time (s) between consecutive nuclei with no pause between them; ``None`` with
    too few. Each peak's time is refined by the parabola through it and its two neighbours:
    on the 10 ms grid alone a 0.2 s period would move in 5 % steps."""
    if peaks.size < _MIN_ADAPT_NUCLEI:
        return None
    times = peaks.astype(np.float64)
    inner = (peaks > 0) & (peaks < contour.shape[0] - 1)
    left, mid, right = (contour[peaks[inner] + k] for k in (-1, 0, 1))
    curvature = left - 2.0 * mid + right
    peaked = curvature < 0  # a flat top (0) keeps the frame's own time
    shift = np.zeros(curvature.shape[0])
    shift[peaked] = 0.5 * (left[peaked] - right[peaked]) / curvature[peaked]
    times[inner] += shift
    run = np.cumsum(~in_speech)  # frames of one speech run share a value
    same_run = run[peaks[1:]] == run[peaks[:-1]]
    intervals = np.diff(times)[same_run]
    if intervals.size < _MIN_ADAPT_INTERVALS:
        return None
    return float(np.median(intervals)) * HOP_S


def phonation_frames(
    intensity_db: npt.ArrayLike,
    speech: npt.ArrayLike,
    *,
    silence_re_peak_db: float = -35.0,
) -> npt.NDArray[np.bool_]:
    """Speech frames that sound: the phonation of the articulation rate.

    A speech frame sounds when its :func:`syllable_intensity_db` (unsmoothed) is above
    ``silence_re_peak_db`` relative to the 99th percentile of the speaker's speech frames
    (de Jong & Wempe's silence threshold, relative to the speaker, so channel gains do not
    matter). Both the threshold and the per-frame decision follow the speech under a change
    of tempo; the voice activity's edges do not (its hangover, hysteresis and noise-floor
    blocks are in seconds, and a quiet stretch may be speech at one tempo and not at the
    other). ``python bench/rate_tempo.py``, phonation time within 5 % of the factor under
    ``sox tempo`` 0.8x and 1.25x: every speech frame 56 of 60 cells (worst 6.9 % off); -35
    dB 59 (5.8 %); -30 dB 60 (4.5 %); -25 dB (de Jong & Wempe's) 60 (4.9 %). The threshold
    drops stop closures and the quietest edges of speech: 90 %, 81 % and 69 % of the speech
    frames of read and meeting speech are kept, and the per-turn articulation rate on espeak
    calls, whose truth counts closures as phonation, errs by 4.8 %, 5.3 % and 6.3 % (every
    speech frame: 4.8 %; ``python bench/e2e_eval.py bench/out/v8f``): -35 dB costs nothing
    there.

    Parameters
    ----------
    intensity_db : array_like, shape (T,)
        :func:`syllable_intensity_db` on the 10 ms clock (NaN frames never sound).
    speech : array_like of bool, shape (T,)
        The speaker's speech frames.
    silence_re_peak_db : float
        Level (dB, <= 0) relative to the 99th percentile of the speech frames' intensity
        below which a frame is silent.

    Returns
    -------
    numpy.ndarray of bool, shape (T,)
        A subset of ``speech``; all of its finite frames when there are fewer than 10.

    Raises
    ------
    ParameterError
        On shape mismatches or a positive ``silence_re_peak_db``.
    """
    level = np.asarray(_check_1d(intensity_db, "intensity_db"), dtype=np.float64)
    mask = _optional_mask(speech, level.shape[0], "speech")
    if not silence_re_peak_db <= 0:
        raise ParameterError(
            f"silence_re_peak_db must be <= 0 dB (-35 dB is typical), got {silence_re_peak_db}"
        )
    usable = np.isfinite(level) if mask is None else mask & np.isfinite(level)
    if np.count_nonzero(usable) < _MIN_SPEECH_FRAMES:
        return usable
    threshold_db = float(np.quantile(level[usable], 0.99)) + silence_re_peak_db
    with np.errstate(invalid="ignore"):
        return usable & (level > threshold_db)


def _optional_mask(
    mask: npt.ArrayLike | None, n_frames: int, name: str
) -> npt.NDArray[np.bool_] | None:
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != (n_frames,):
        raise ParameterError(
            f"{name} must be a per-frame mask of shape ({n_frames},) like intensity_db, "
            f"got shape {arr.shape}"
        )
    return arr.astype(bool)
