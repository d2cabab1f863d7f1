"""Tests for dsp.rate: syllable-nucleus intensity, nuclei, rate statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import scipy.signal

from dsp import measures
from dsp.errors import ParameterError
from dsp.frames import HOP_S, frame_count, segments_to_mask
from dsp.rate import (
    phonation_frames,
    sonority_db,
    syllable_intensity_db,
    syllable_nuclei,
)

DATA = Path(__file__).resolve().parents[1] / "data"
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def harmonic_bursts(
    rate_syl_per_s: float,
    n_syllables: int,
    *,
    sr: int = 16000,
    f0_hz: float = 140.0,
    lead_s: float = 0.3,
    rng: np.random.Generator | None = None,
) -> tuple[npt.NDArray[np.float32], BoolArray, BoolArray]:
    """Vowel-like harmonic bursts at a known syllable rate.

    Returns the signal, the true voicing per frame (burst envelope > 5 %) and the speech
    mask (the span of the bursts). Each syllable is a Hann-shaped burst over 70 % of its
    period of a harmonic complex with a formant-like spectrum (peaks near 700 and 1200 Hz),
    on a -45 dB noise floor.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    period_s = 1.0 / rate_syl_per_s
    total_s = lead_s * 2 + n_syllables * period_s
    n = int(round(total_s * sr))
    t = np.arange(n) / sr
    jitter = 1.0 + 0.02 * np.sin(2 * np.pi * 3.0 * t)
    phase = 2 * np.pi * np.cumsum(f0_hz * jitter) / sr
    voice = np.zeros(n)
    for k in range(1, int(3400 // f0_hz) + 1):
        f = k * f0_hz
        gain = np.exp(-(((f - 700.0) / 300.0) ** 2)) + 0.5 * np.exp(-(((f - 1200.0) / 400.0) ** 2))
        voice += (gain + 0.05) * np.sin(k * phase)
    voice /= np.max(np.abs(voice))
    envelope = np.zeros(n)
    burst = int(round(0.7 * period_s * sr))
    shape = np.hanning(burst)
    for i in range(n_syllables):
        start = int(round((lead_s + i * period_s + 0.15 * period_s) * sr))
        envelope[start : start + burst] = shape
    y = 0.5 * envelope * voice + 10 ** (-45 / 20) * rng.standard_normal(n)
    n_frames = frame_count(n, sr)
    centres = np.minimum(np.arange(n_frames) * int(sr * HOP_S), n - 1)
    voiced = envelope[centres] > 0.05
    speech = segments_to_mask(np.array([[lead_s, total_s - lead_s]]), n_frames)
    return y.astype(np.float32), voiced, speech


def voicing(y: npt.NDArray[np.float32], sr: int, *, threshold: float = 0.45) -> BoolArray:
    """Stand-in voicing detector: normalised autocorrelation peak (60-400 Hz) and energy."""
    hop = int(sr * HOP_S)
    n_frames = frame_count(len(y), sr)
    win = int(0.05 * sr)
    padded = np.pad(y.astype(np.float64), (win // 2, win))
    frames = padded[np.arange(n_frames)[:, None] * hop + np.arange(win)[None, :]]
    frames = frames - frames.mean(axis=1, keepdims=True)
    w = np.hanning(win)
    nfft = 1 << int(np.ceil(np.log2(2 * win)))
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames * w, nfft)) ** 2, nfft)[:, :win]
    acw = np.fft.irfft(np.abs(np.fft.rfft(w, nfft)) ** 2, nfft)[:win]
    r = ac / np.maximum(ac[:, :1], 1e-20) / np.maximum(acw / acw[0], 1e-3)
    peak = r[:, sr // 400 : sr // 60].max(axis=1)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    return np.asarray((peak > threshold) & (energy_db > np.quantile(energy_db, 0.95) - 35.0))


# ---------------------------------------------------------------- syllable_intensity_db


@pytest.mark.parametrize("sr", [8000, 16000])
@pytest.mark.parametrize("n", [0, 1, 79, 80, 81, 159, 160, 12345])
def test_intensity_has_one_value_per_frame(sr: int, n: int) -> None:
    y = np.random.default_rng(1).standard_normal(n).astype(np.float32) * 0.1
    level = syllable_intensity_db(y, sr)
    assert level.shape == (frame_count(n, sr),)
    assert level.dtype == np.float32
    assert np.all(np.isfinite(level))


def test_intensity_of_a_full_scale_sine_is_minus_3_db() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    level = syllable_intensity_db(np.sin(2 * np.pi * 1000.0 * t), sr)
    assert np.allclose(level[10:-10], -3.0, atol=0.3)


def test_intensity_is_band_limited() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    in_band = syllable_intensity_db(0.5 * np.sin(2 * np.pi * 800.0 * t), sr)
    hum = syllable_intensity_db(0.5 * np.sin(2 * np.pi * 60.0 * t), sr)
    hiss = syllable_intensity_db(0.5 * np.sin(2 * np.pi * 6000.0 * t), sr)
    assert np.median(in_band) - np.median(hum) > 25.0
    assert np.median(in_band) - np.median(hiss) > 25.0


def test_intensity_of_silence_is_the_floor_not_an_error() -> None:
    level = syllable_intensity_db(np.zeros(8000, dtype=np.float32), 8000)
    assert np.all(level == np.float32(-120.0))


def test_intensity_treats_non_finite_samples_as_silence() -> None:
    y = np.full(1600, 0.1, dtype=np.float32)
    y[800] = np.nan
    level = syllable_intensity_db(y, 8000)
    assert np.all(np.isfinite(level))


def test_intensity_follows_a_gain_change_exactly() -> None:
    y, _, _ = harmonic_bursts(4.0, 8)
    loud = syllable_intensity_db(y, 16000)
    quiet = syllable_intensity_db(y * np.float32(0.1), 16000)
    assert np.allclose(loud - quiet, 20.0, atol=0.01)


@pytest.mark.parametrize("sr", [8000, 16000])
def test_intensity_is_frame_local_so_blocks_match_the_whole(sr: int) -> None:
    y, _, _ = harmonic_bursts(5.0, 20, sr=sr)
    whole = syllable_intensity_db(y, sr)
    hop = int(sr * HOP_S)
    context = 10 * hop  # 0.1 s
    start_frame, stop_frame = 137, 301
    lo = start_frame * hop - context
    hi = stop_frame * hop + context
    block = syllable_intensity_db(y[lo:hi], sr)
    part = block[context // hop : context // hop + stop_frame - start_frame]
    assert np.max(np.abs(part - whole[start_frame:stop_frame])) < 0.05


def test_intensity_does_not_modify_its_input() -> None:
    y = np.random.default_rng(2).standard_normal(4000).astype(np.float32)
    copy = y.copy()
    syllable_intensity_db(y, 8000)
    assert np.array_equal(y, copy)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"band_hz": (2500.0, 300.0)},
        {"band_hz": (0.0, 2000.0)},
        {"smooth_s": 0.01},
        {"smooth_s": 0.5},
    ],
)
def test_intensity_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        syllable_intensity_db(np.zeros(800), 8000, **kwargs)  # type: ignore[arg-type]


def test_intensity_rejects_bad_shape_and_rate() -> None:
    with pytest.raises(ParameterError):
        syllable_intensity_db(np.zeros((2, 800)), 8000)
    with pytest.raises(ParameterError):
        syllable_intensity_db(np.zeros(800), 0)


# ---------------------------------------------------------------- syllable_nuclei


def nuclei_of(
    y: npt.NDArray[np.float32], sr: int, voiced: BoolArray, speech: BoolArray
) -> FloatArray:
    level = syllable_intensity_db(y, sr)
    return syllable_nuclei(level, voiced=voiced, speech=speech).astype(np.float64)


@pytest.mark.parametrize("sr", [8000, 16000])
@pytest.mark.parametrize("rate", [2.0, 3.5, 5.0, 7.0])
def test_bursts_at_a_known_rate_give_that_count(sr: int, rate: float) -> None:
    n_syll = int(round(4.0 * rate))
    y, voiced, speech = harmonic_bursts(rate, n_syll, sr=sr)
    nuclei = nuclei_of(y, sr, voiced, speech)
    assert nuclei.size == n_syll
    # one nucleus per burst, near the burst's peak
    period = 1.0 / rate
    centres = 0.3 + (np.arange(n_syll) + 0.15 + 0.35) * period
    assert np.max(np.abs(nuclei * HOP_S - centres)) < 0.03


def rates_in(
    nuclei: npt.ArrayLike, ipu_s: npt.NDArray[np.float64], n_frames: int
) -> measures.Rates:
    """Rates of nuclei over one IPU that is speech throughout (:mod:`dsp.measures`)."""
    track = measures.SpeakerTrack.build(
        speech=segments_to_mask(ipu_s, n_frames),
        f0_st=np.zeros(n_frames),
        level_db=np.zeros(n_frames),
        nuclei_frames=nuclei,
        ipus_s=ipu_s,
    )
    return measures.rates(track, ipu_s)


@pytest.mark.parametrize("rate", [3.0, 6.0])
def test_bursts_give_their_rate_through_measures(rate: float) -> None:
    n_syll = 24
    y, voiced, speech = harmonic_bursts(rate, n_syll)
    nuclei = syllable_nuclei(syllable_intensity_db(y, 16000), voiced=voiced, speech=speech)
    ipu = np.array([[0.3, 0.3 + n_syll / rate]])
    stats = rates_in(nuclei, ipu, frame_count(len(y), 16000))
    assert stats.syllables == n_syll
    assert stats.articulation_rate_syl_per_s == pytest.approx(rate, rel=0.02)


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_rate_scales_with_planted_tempo(factor: float) -> None:
    base = 4.0
    n_syll = 20
    rates = []
    for rate in (base, base * factor):
        y, voiced, speech = harmonic_bursts(rate, n_syll)
        nuclei = syllable_nuclei(syllable_intensity_db(y, 16000), voiced=voiced, speech=speech)
        ipu = np.array([[0.3, 0.3 + n_syll / rate]])
        stats = rates_in(nuclei, ipu, frame_count(len(y), 16000))
        rates.append(stats.articulation_rate_syl_per_s)
    assert rates[1] / rates[0] == pytest.approx(factor, rel=0.03)


def test_a_20_db_quieter_channel_gives_the_same_nuclei() -> None:
    y, voiced, speech = harmonic_bursts(4.0, 16, rng=np.random.default_rng(5))
    loud = nuclei_of(y, 16000, voiced, speech)
    quiet = nuclei_of(y * np.float32(0.1), 16000, voiced, speech)
    assert loud.size == 16
    assert np.array_equal(loud, quiet)


def test_silence_gives_no_nuclei() -> None:
    level = syllable_intensity_db(np.zeros(5 * 8000, dtype=np.float32), 8000)
    assert syllable_nuclei(level).size == 0
    assert syllable_nuclei(level, voiced=np.ones(level.size, bool)).size == 0


@pytest.mark.parametrize("sr", [8000, 16000])
def test_noise_gives_almost_no_nuclei(sr: int) -> None:
    rng = np.random.default_rng(11)
    y = (0.1 * rng.standard_normal(5 * sr)).astype(np.float32)
    level = syllable_intensity_db(y, sr)
    voiced = voicing(y, sr)
    assert syllable_nuclei(level, voiced=voiced).size <= 1
    # Even without the voicing gate, steady noise has few 2 dB intensity peaks per second
    # compared with the ~4 per second of speech.
    assert syllable_nuclei(level).size <= 5


def test_the_voicing_gate_removes_unvoiced_peaks() -> None:
    y, voiced, speech = harmonic_bursts(4.0, 16)
    level = syllable_intensity_db(y, 16000)
    no_voicing = np.zeros_like(voiced)
    assert syllable_nuclei(level, voiced=no_voicing, speech=speech).size == 0
    half = voiced.copy()
    half[half.size // 2 :] = False
    found = syllable_nuclei(level, voiced=half, speech=speech)
    assert 0 < found.size < 16
    assert np.all(found < half.size // 2 + 2)


# ---------------------------------------------------------------- sonority_db


def _band_noise(lo_hz: float, hi_hz: float, seconds: float, sr: int) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(3).standard_normal(int(seconds * sr))
    sos = scipy.signal.butter(6, [lo_hz, hi_hz], btype="bandpass", fs=sr, output="sos")
    return scipy.signal.sosfilt(sos, x).astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000])
def test_sonority_is_positive_for_vowels_and_negative_for_fricatives(sr: int) -> None:
    vowel, _, speech = harmonic_bursts(4.0, 8, sr=sr)
    vowel_db = sonority_db(vowel, sr)
    loud = syllable_intensity_db(vowel, sr) > -30
    assert vowel_db.shape == (frame_count(vowel.size, sr),)
    assert np.median(vowel_db[loud & speech]) > 10.0  # formants at 700 and 1200 Hz
    hiss = sonority_db(_band_noise(2200.0, 3300.0, 1.0, sr), sr)
    assert np.median(hiss[5:-5]) < -10.0
    assert np.all(np.isfinite(sonority_db(np.zeros(sr // 2, np.float32), sr)))


def test_sonority_is_frame_local_and_gain_free() -> None:
    y, _, _ = harmonic_bursts(5.0, 20, sr=8000)
    whole = sonority_db(y, 8000)
    np.testing.assert_allclose(sonority_db(y * np.float32(0.05), 8000), whole, atol=0.01)
    hop = 80
    block = sonority_db(y[137 * hop - 800 : 301 * hop + 800], 8000)
    assert np.max(np.abs(block[10 : 10 + 164] - whole[137:301])) < 0.05


def test_the_sonority_gate_removes_fricative_peaks_next_to_voicing() -> None:
    sr = 16000
    vowels, voiced, speech = harmonic_bursts(3.0, 9, sr=sr)
    # a fricative burst 40 ms after each vowel: inside the voicing reach, above 2 kHz
    hiss = _band_noise(2200.0, 3300.0, vowels.size / sr, sr)
    envelope = np.zeros(vowels.size, np.float32)
    period = sr // 3
    for i in range(9):
        start = int((0.3 + 0.15 / 3 + 0.7 / 3) * sr) + i * period + int(0.04 * sr)
        envelope[start : start + int(0.06 * sr)] = np.hanning(int(0.06 * sr))
    y = vowels + 0.6 * envelope * hiss / np.max(np.abs(hiss))
    level = syllable_intensity_db(y, sr, band_hz=(300.0, 3400.0))
    kwargs = dict(voiced=voiced, speech=speech, adapt_to_rate=False, smooth_s=0.03)
    without = syllable_nuclei(level, **kwargs)  # type: ignore[arg-type]
    with_gate = syllable_nuclei(level, sonority=sonority_db(y, sr), **kwargs)  # type: ignore[arg-type]
    assert without.size > 9  # the fricatives are found as peaks without the gate
    assert with_gate.size == 9
    with pytest.raises(ParameterError):
        syllable_nuclei(level, sonority=np.zeros(3))


# ---------------------------------------------------------------- phonation_frames


def test_phonation_is_the_sounding_part_of_speech() -> None:
    # bursts over 70 % of each period with gaps on a floor about 35 dB below the bursts: the
    # gaps are speech frames (one speech run over all bursts) but do not sound at -25 dB
    y, _voiced, speech = harmonic_bursts(4.0, 12)
    level = syllable_intensity_db(y, 16000)
    sounding = phonation_frames(level, speech, silence_re_peak_db=-25.0)
    assert not (sounding & ~speech).any()
    assert 0.4 < sounding.sum() / speech.sum() < 0.75
    # the loudest frames all sound, the floor between bursts never does
    assert sounding[speech & (level > np.quantile(level[speech], 0.5))].all()
    assert not sounding[speech & (level < np.quantile(level[speech], 0.99) - 26.0)].any()
    # the default threshold (-35 dB) keeps more of the bursts' quiet edges
    assert phonation_frames(level, speech).sum() > sounding.sum()


def test_phonation_is_gain_free_and_follows_tempo() -> None:
    y, _voiced, speech = harmonic_bursts(4.0, 16)
    base = phonation_frames(syllable_intensity_db(y, 16000), speech)
    quiet = phonation_frames(syllable_intensity_db(y * np.float32(0.1), 16000), speech)
    np.testing.assert_array_equal(base, quiet)
    # the same bursts 1.25x faster: phonation time shrinks by the factor
    y_fast, _, speech_fast = harmonic_bursts(5.0, 16)
    fast = phonation_frames(syllable_intensity_db(y_fast, 16000), speech_fast)
    assert fast.sum() * 1.25 / base.sum() == pytest.approx(1.0, abs=0.05)


def test_phonation_of_too_little_speech_is_that_speech() -> None:
    level = np.full(50, -30.0)
    level[3] = -90.0
    speech = np.zeros(50, dtype=bool)
    speech[2:8] = True
    np.testing.assert_array_equal(phonation_frames(level, speech), speech)
    level[5] = np.nan
    assert not phonation_frames(level, speech)[5]


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros(10), np.ones(9, dtype=bool), {}),
        (np.zeros((2, 5)), np.ones(10, dtype=bool), {}),
        (np.zeros(10), np.ones(10, dtype=bool), {"silence_re_peak_db": 3.0}),
    ],
)
def test_phonation_rejects_bad_input(args: tuple[object, object, dict[str, float]]) -> None:
    level, speech, kwargs = args
    with pytest.raises(ParameterError):
        phonation_frames(level, speech, **kwargs)  # type: ignore[arg-type]


def test_nuclei_only_inside_speech() -> None:
    y, voiced, speech = harmonic_bursts(4.0, 16)
    level = syllable_intensity_db(y, 16000)
    first_half = speech.copy()
    first_half[np.flatnonzero(speech)[len(np.flatnonzero(speech)) // 2] :] = False
    found = syllable_nuclei(level, voiced=voiced, speech=first_half)
    assert found.size == 8
    assert np.all(first_half[found])


def test_too_little_speech_gives_no_nuclei_and_nan_gives_no_crash() -> None:
    assert syllable_nuclei(np.zeros(0)).size == 0
    assert syllable_nuclei(np.full(500, np.nan)).size == 0
    y, voiced, speech = harmonic_bursts(4.0, 12)
    level = syllable_intensity_db(y, 16000).astype(np.float64)
    level[::7] = np.nan
    found = syllable_nuclei(level, voiced=voiced, speech=speech)
    assert found.dtype == np.int64
    assert found.size == 12  # the smoothing bridges isolated NaN frames
    long_gap = level.copy()
    long_gap[100:200] = np.nan
    in_gap = syllable_nuclei(long_gap, voiced=voiced, speech=speech)
    assert not np.any((in_gap > 105) & (in_gap < 195))


def test_nuclei_do_not_modify_inputs() -> None:
    y, voiced, speech = harmonic_bursts(4.0, 8)
    level = syllable_intensity_db(y, 16000)
    copies = (level.copy(), voiced.copy(), speech.copy())
    syllable_nuclei(level, voiced=voiced, speech=speech)
    assert all(np.array_equal(a, b) for a, b in zip(copies, (level, voiced, speech), strict=True))


def test_without_rate_adaptation_fast_bursts_are_still_found() -> None:
    y, voiced, speech = harmonic_bursts(5.0, 20)
    level = syllable_intensity_db(y, 16000)
    assert syllable_nuclei(level, voiced=voiced, speech=speech, adapt_to_rate=False).size == 20


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_dip_db": 0.0},
        {"silence_re_peak_db": 3.0},
        {"min_separation_s": -0.1},
        {"voiced_tolerance_s": -0.01},
        {"smooth_s": 0.5},
        {"threshold_re_median_db": float("nan")},
        {"reference_rate_syl_per_s": 0.0},
        {"max_adaptation": 0.5},
        {"voiced": np.ones(3, bool)},
        {"speech": np.ones(3, bool)},
    ],
)
def test_nuclei_reject_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        syllable_nuclei(np.zeros(100), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- real speech


def read_mono(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        sr = int(stream.codec_context.sample_rate)
    y = np.concatenate(chunks)
    if y.dtype.kind == "i":
        y = y / 32768.0
    return y.astype(np.float32), sr


def telephone(y: npt.NDArray[np.float32], sr: int) -> npt.NDArray[np.float32]:
    """16 kHz -> 8 kHz, 300-3400 Hz, 8-bit mu-law round trip."""
    down = scipy.signal.resample_poly(y, 1, sr // 8000)
    sos = scipy.signal.butter(4, [300.0, 3400.0], btype="bandpass", fs=8000, output="sos")
    band = np.clip(scipy.signal.sosfilt(sos, down), -1.0, 1.0)
    mu = 255.0
    coded = np.round(np.sign(band) * np.log1p(mu * np.abs(band)) / np.log1p(mu) * 127.0) / 127.0
    return (np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu).astype(np.float32)


def energy_speech(level_db: npt.NDArray[np.float32]) -> BoolArray:
    return np.asarray(level_db > np.quantile(level_db, 0.95) - 30.0)


# Syllables from the CMU dictionary (pronouncing) for the LJ Speech transcripts.
LJ_FILES = {
    "ljspeech_LJ001-0002_16k.wav": 10,  # in being comparatively modern.
    "ljspeech_LJ001-0004_16k.wav": 22,  # produced the block books, which were the immediate ...
}


@pytest.mark.slow
@pytest.mark.parametrize("band", ["wide", "telephone"])
def test_real_speech_syllable_count(band: str) -> None:
    found, truth = 0, 0
    for name, n_true in LJ_FILES.items():
        y, sr = read_mono(DATA / name)
        if band == "telephone":
            y, sr = telephone(y, sr), 8000
        level = syllable_intensity_db(y, sr)
        speech = energy_speech(syllable_intensity_db(y, sr, band_hz=(100.0, 3400.0)))
        nuclei = syllable_nuclei(level, voiced=voicing(y, sr), speech=speech)
        assert abs(nuclei.size - n_true) <= 0.2 * n_true + 1, name
        found += nuclei.size
        truth += n_true
    assert abs(found - truth) <= 0.15 * truth


def test_real_speech_is_not_counted_as_silence_or_noise() -> None:
    # fast guard on the real file: a plausible syllable rate, and a 20 dB quieter copy agrees
    y, sr = read_mono(DATA / "ljspeech_LJ001-0002_16k.wav")
    voiced = voicing(y, sr)
    counts = []
    for gain in (1.0, 0.1):
        level = syllable_intensity_db(y * np.float32(gain), sr)
        speech = energy_speech(syllable_intensity_db(y * np.float32(gain), sr, band_hz=(100, 3400)))
        counts.append(syllable_nuclei(level, voiced=voiced, speech=speech).size)
    assert counts[0] == counts[1]
    assert 7 <= counts[0] <= 13
