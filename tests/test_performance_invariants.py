"""Invariants of the performance work: speed-ups must not change what is measured.

No timings here (they live in bench/speed.py): these check that the threaded stage 1, the
block-wise decoder and the grouped Viterbi give the same numbers as the plain paths, and
that the cheaper quality tally still makes the same decisions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsp import pipeline, pitch
from dsp.io import decode, iter_blocks
from dsp.params import AnalysisParams
from tests.audiofiles import FORMATS, write_format

REPO = Path(__file__).resolve().parents[1]
AMI_8K = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


def _speechlike(rng: np.random.Generator, rate: int, seconds: float) -> np.ndarray:
    """Two channels of voiced bursts (harmonic, gliding f0) over low noise, alternating."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = 0.003 * rng.standard_normal((2, n))
    for c, f0 in ((0, 120.0), (1, 210.0)):
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))) / rate
        voiced = sum(np.sin(h * phase) / h for h in range(1, 6))
        gate = (np.sin(2 * np.pi * 0.25 * t + c * np.pi) > 0.2).astype(float)
        out[c] += 0.2 * voiced * gate
    return out.astype(np.float32)


def _tracks(x: np.ndarray, rate: int, *, block_s: float, workers: int) -> pipeline.FrameTracks:
    block = int(block_s * rate)
    blocks = [x[:, i : i + block] for i in range(0, x.shape[1], block)]
    params = AnalysisParams(block_s=block_s).validate()
    tracks, _ = pipeline.frame_tracks(blocks, rate, params, workers=workers)
    return tracks


@pytest.mark.parametrize("rate", [8000, 16000])
def test_threaded_stage1_equals_sequential(rate: int) -> None:
    x = _speechlike(np.random.default_rng(1), rate, 23.0)
    one = _tracks(x, rate, block_s=5.0, workers=1)
    two = _tracks(x, rate, block_s=5.0, workers=2)
    for name in ("level_db", "activity_features", "periodicity", "syllable_db", "sonority_db"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name), err_msg=name)
    np.testing.assert_array_equal(one.f0_candidates_hz, two.f0_candidates_hz)
    np.testing.assert_array_equal(one.f0_strength, two.f0_strength)
    # and the signal is not trivial: some frames carry pitch candidates
    assert np.isfinite(one.f0_candidates_hz).any(axis=1).mean() > 0.2


def test_stage1_frame_count_independent_of_block_size() -> None:
    rate = 8000
    x = _speechlike(np.random.default_rng(2), rate, 17.3)
    a = _tracks(x, rate, block_s=5.0, workers=2)
    b = _tracks(x, rate, block_s=7.0, workers=2)
    assert a.level_db.shape == b.level_db.shape == (2, 1 + x.shape[1] // (rate // 100))
    # level is exactly frame-local: identical whatever the block size
    np.testing.assert_array_equal(a.level_db, b.level_db)


def test_stage1_threads_on_real_call() -> None:
    """The real AMI sample: threaded and sequential stage 1 agree bit for bit."""
    info, blocks = iter_blocks(AMI_8K, block_s=20.0)
    parts = list(blocks)
    params = AnalysisParams(block_s=20.0).validate()
    one, tally_one = pipeline.frame_tracks(parts, info.sample_rate_hz, params, workers=1)
    two, tally_two = pipeline.frame_tracks(parts, info.sample_rate_hz, params, workers=2)
    np.testing.assert_array_equal(one.f0_candidates_hz, two.f0_candidates_hz)
    np.testing.assert_array_equal(one.activity_features, two.activity_features)
    assert tally_one.samples == tally_two.samples == sum(p.shape[1] for p in parts)


@pytest.mark.parametrize("name", ["wav_s16", "wav_mulaw", "wav_u8", "wav_f64", "flac", "mp3"])
def test_decode_block_size_independent(tmp_path: Path, name: str) -> None:
    """Blocks of any size join to the one-block decode (the native-format conversion is
    done per block, so a frame split across blocks must not lose or repeat samples)."""
    rng = np.random.default_rng(3)
    x = (0.3 * rng.standard_normal((2, 8000 * 3))).clip(-1, 1).astype(np.float32)
    path = write_format(tmp_path / name, name, x, 8000)
    whole = decode(path).samples
    for block_s in (0.37, 1.0, 7.0):
        _, blocks = iter_blocks(path, block_s=block_s)
        parts = list(blocks)
        assert all(p.shape[1] == int(round(block_s * 8000)) for p in parts[:-1])
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    if FORMATS[name][2].startswith("pcm_") and name != "wav_mulaw":
        # lossless PCM: the decoded samples are the written ones to the format's precision
        step = {"wav_u8": 1 / 128, "wav_s16": 1 / 32768}.get(name, 1e-7)
        np.testing.assert_allclose(whole, x, atol=step)


def test_viterbi_groups_do_not_change_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    rate = 8000
    x = _speechlike(np.random.default_rng(4), rate, 30.0)[0]
    cands = pitch.f0_candidates(x, rate)
    whole = pitch.f0_path(cands).f0_hz
    monkeypatch.setattr(pitch, "_VITERBI_GROUP", 2)
    grouped = pitch.f0_path(cands).f0_hz
    np.testing.assert_array_equal(whole, grouped)
    monkeypatch.setattr(pitch, "_SCORE_ROWS", 77)  # scores built in odd slices of rows
    sliced = pitch.speaker_f0_path(cands).f0_hz
    monkeypatch.setattr(pitch, "_SCORE_ROWS", 1 << 20)
    np.testing.assert_array_equal(sliced, pitch.speaker_f0_path(cands).f0_hz)
    assert np.isfinite(whole).mean() > 0.2


def _narrowband_warned(x: np.ndarray, rate: int) -> tuple[bool, float]:
    tally = pipeline.QualityTally()
    for i in range(0, x.shape[1], rate * 7):
        tally.add(x[:, i : i + rate * 7], rate)
    share = float(tally.spectrum_above_4khz.sum() / tally.spectrum_total.sum())
    return share < 1e-4, share


def test_tally_narrowband_share_tells_upsampled_from_wideband() -> None:
    rng = np.random.default_rng(5)
    wide = (0.1 * rng.standard_normal((2, 16000 * 20))).astype(np.float32)
    warned, share = _narrowband_warned(wide, 16000)
    assert not warned and 0.4 < share < 0.6  # white noise: half its energy above 4 kHz
    # telephone-band speech upsampled to 16 kHz: nothing above 4 kHz
    import scipy.signal

    narrow8k = decode(AMI_8K).samples
    up = scipy.signal.resample_poly(narrow8k, 2, 1, axis=1).astype(np.float32)
    warned, share = _narrowband_warned(up, 16000)
    assert warned, share
    real16k = decode(REPO / "samples" / "ami_two_party_16k.wav").samples
    warned, share = _narrowband_warned(real16k, 16000)
    assert not warned and share > 1e-3, share


def test_tally_counts_clipping_and_identical_channels() -> None:
    x = np.zeros((2, 8000), dtype=np.float32)
    x[0, :100] = 1.0
    x[1] = 0.5
    tally = pipeline.QualityTally()
    tally.add(x[:, :3000], 8000)
    tally.add(x[:, 3000:], 8000)
    assert tally.clipped.tolist() == [100, 0]
    assert tally.samples == 8000
    assert tally.max_abs_diff == pytest.approx(0.5)
    assert tally.power[1] == pytest.approx(0.25 * 8000)
    assert tally.cross == pytest.approx(100 * 0.5)


def test_detect_speech_slices_do_not_change_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """detect_speech works on slices of frames (bounded memory): the slice length must not
    change any decision or estimate, also with NaN frames and a channel gain step."""
    from dsp import activity

    info, blocks = iter_blocks(AMI_8K, block_s=20.0)
    params = AnalysisParams(block_s=20.0).validate()
    tracks, _ = pipeline.frame_tracks(list(blocks), info.sample_rate_hz, params, workers=1)
    feats = tracks.activity_features.copy()
    feats[0, :, 1500:1620] = np.nan  # a decoding gap on one channel
    feats[1, :, 2500:] += np.float32(6.0)  # the customer's gain steps up by 6 dB
    before = feats.copy()
    whole = activity.detect_speech(feats)
    for slice_frames in (997, 64):  # odd sizes: slices cut noise blocks and speech runs
        monkeypatch.setattr(activity, "_SLICE_FRAMES", slice_frames)
        sliced = activity.detect_speech(feats)
        np.testing.assert_array_equal(whole.speech, sliced.speech)
        for name in ("noise_floor_db", "bleed_db", "speech_level_db", "leak_gain_db"):
            np.testing.assert_array_equal(getattr(whole, name), getattr(sliced, name), name)
    np.testing.assert_array_equal(feats, before)  # the input is not modified
    assert 0.2 < whole.speech.mean() < 0.6 and np.isfinite(whole.leak_gain_db).all()
    # float64 features of the same values give the same answer (no float32 arithmetic)
    as64 = activity.detect_speech(feats.astype(np.float64))
    np.testing.assert_array_equal(whole.speech, as64.speech)
    np.testing.assert_array_equal(whole.speech_level_db, as64.speech_level_db)


def test_speech_possible_is_a_superset_of_speech() -> None:
    """Stage 1 skips pitch where activity.speech_possible rules speech out: that must never
    drop a frame that detect_speech (on the whole call) calls speech, whatever the blocks."""
    from dsp import activity

    info, blocks = iter_blocks(AMI_8K, block_s=20.0)
    params = AnalysisParams(block_s=20.0).validate()
    tracks, _ = pipeline.frame_tracks(list(blocks), info.sample_rate_hz, params, workers=1)
    band = tracks.activity_features[:, 0].copy()
    band[1, 2500:] += np.float32(12.0)  # a gain step: the floor moves within the call
    feats = np.stack([band, band], axis=1)
    speech = activity.detect_speech(feats, **pipeline.ACTIVITY_FLOOR).speech
    n = band.shape[1]
    for c in (0, 1):
        for size in (n, 2000, 1234):  # the whole call, the pipeline's block size, odd sizes
            gate = np.concatenate(
                [
                    activity.speech_possible(
                        band[c, a : a + size], first_frame=a, **pipeline.ACTIVITY_FLOOR
                    )
                    for a in range(0, n, size)
                ]
            )
            assert not (speech[c] & ~gate).any(), (c, size)
        # and it does rule out frames (on this sample ~20-25 % of the non-speech ones: the
        # other party's bleed stands above the floor and stays in)
        whole = activity.speech_possible(band[c], **pipeline.ACTIVITY_FLOOR)
        assert (~whole & ~speech[c]).sum() > 0.1 * (~speech[c]).sum()


def test_pitch_candidates_do_not_depend_on_the_mask() -> None:
    x = decode(AMI_8K).samples[0]
    full = pitch.f0_candidates(x, 8000)
    mask = np.random.default_rng(6).random(full.n_frames) < 0.4
    part = pitch.f0_candidates(x, 8000, frame_mask=mask)
    np.testing.assert_array_equal(full.freq_hz[mask], part.freq_hz[mask])
    np.testing.assert_array_equal(full.strength[mask], part.strength[mask])
    assert np.isnan(part.freq_hz[~mask]).all() and np.isfinite(full.freq_hz[mask]).any()


@pytest.mark.parametrize("name", [n for n in FORMATS if FORMATS[n][0] == ".wav"])
@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_wav_short_probe_decodes_the_same(
    tmp_path: Path, name: str, rate: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WAVs are opened with a 32-byte probe (FFmpeg's default probe decoded 5 MB first):
    same stream parameters and samples as with the default probe, from a path and bytes."""
    from dsp import io as dsp_io

    rng = np.random.default_rng(7)
    x = (0.3 * rng.standard_normal((2, rate * 2))).clip(-1, 1).astype(np.float32)
    path = write_format(tmp_path / name, name, x, rate)
    assert dsp_io._is_riff_wave(path) and dsp_io._is_riff_wave(path.read_bytes())
    short = decode(path)
    from_bytes = decode(path.read_bytes())
    monkeypatch.setattr(dsp_io, "_is_riff_wave", lambda source: False)
    default = decode(path)
    assert short.info == default.info == from_bytes.info
    np.testing.assert_array_equal(short.samples, default.samples)
    np.testing.assert_array_equal(from_bytes.samples, default.samples)


def test_riff_check_is_false_for_other_formats(tmp_path: Path) -> None:
    from dsp import io as dsp_io

    x = np.zeros((2, 8000), dtype=np.float32)
    flac = write_format(tmp_path / "x", "flac", x, 8000)
    assert not dsp_io._is_riff_wave(flac)
    assert not dsp_io._is_riff_wave(b"RIFF")
    assert not dsp_io._is_riff_wave(tmp_path / "missing.wav")


@pytest.mark.parametrize("segment", [60_000, 333])
@pytest.mark.parametrize("expected", [None, 0, 7 * 8000, 23 * 8000, 23 * 8000 + 5, 40 * 8000])
def test_stage1_tracks_same_whatever_the_expected_length(
    expected: int | None, segment: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage 1 writes blocks into tracks sized from the header: a missing, short, exact or
    long declared length gives the same tracks (further segments joined, or trimmed)."""
    monkeypatch.setattr(pipeline, "_SEGMENT_FRAMES", segment)
    rate = 8000
    x = _speechlike(np.random.default_rng(6), rate, 23.0)
    blocks = [x[:, i : i + 5 * rate] for i in range(0, x.shape[1], 5 * rate)]
    params = AnalysisParams(block_s=5.0).validate()
    ref, _ = pipeline.frame_tracks(blocks, rate, params, workers=1, expected_samples=x.shape[1])
    got, _ = pipeline.frame_tracks(blocks, rate, params, workers=2, expected_samples=expected)
    for name in ref.__dataclass_fields__:
        a, b = getattr(ref, name), getattr(got, name)
        assert b.shape[-1] == 1 + x.shape[1] // 80 and b.flags.c_contiguous, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert np.isfinite(ref.f0_candidates_hz).any(axis=1).mean() > 0.2


def test_live_viterbi_chunks_match_a_cumulative_count() -> None:
    """A chunk is searched when a frame of its span (core plus margins, clipped) can be
    voiced: the block-wise test equals the prefix-count definition."""
    rng = np.random.default_rng(7)
    core, margin = pitch._VITERBI_CORE, pitch._VITERBI_MARGIN
    for n_t in (1, core - 1, core, 5 * core + 17):
        for density in (0.0, 0.0005, 0.01, 0.5):
            any_voiced = rng.random(n_t) < density
            any_voiced[rng.integers(n_t)] |= density > 0.2
            n_chunks = max(1, -(-n_t // core))
            counts = np.concatenate([[0], np.cumsum(any_voiced)])
            first = np.arange(n_chunks) * core
            lo, hi = np.clip(first - margin, 0, n_t), np.clip(first + core + margin, 0, n_t)
            want = np.flatnonzero(counts[hi] > counts[lo])
            np.testing.assert_array_equal(pitch._live_chunks(any_voiced, n_chunks), want)
    # frames just inside a neighbour's margin make that neighbour live, one frame further not
    n_t = 3 * core
    for frame, live in (
        (core - margin, [0, 1]),
        (core - margin - 1, [0]),
        (2 * core + margin - 1, [1, 2]),
        (2 * core + margin, [2]),
    ):
        mask = np.zeros(n_t, dtype=bool)
        mask[frame] = True
        assert pitch._live_chunks(mask, 3).tolist() == live, frame


def test_periodicity_is_made_exactly_from_the_strengths() -> None:
    """Stage 1 keeps no periodicity track: it is each frame's best strength clipped to
    [0, 1], bit for bit what f0_candidates reports (also with a frame mask and silence)."""
    x = decode(AMI_8K).samples[0, : 8000 * 12].copy()
    x[8000 * 3 : 8000 * 4] = 0.0  # digital silence
    mask = np.random.default_rng(8).random(1 + x.size // 80) < 0.7
    for frame_mask in (None, mask):
        cands = pitch.f0_candidates(x, 8000, frame_mask=frame_mask)
        derived = pitch.PitchCandidates.from_strengths(cands.freq_hz, cands.strength).periodicity
        assert derived.dtype == np.float32
        np.testing.assert_array_equal(derived, cands.periodicity)
        assert (cands.periodicity > 0.5).mean() > 0.2 and (cands.periodicity == 0).any()


def test_frame_features_rows_by_name() -> None:
    """Stage 1 keeps only the band energy row; computed alone it is the same row."""
    from dsp import activity

    x = decode(AMI_8K).samples[1, : 8000 * 5]
    both = activity.frame_features(x, 8000)
    np.testing.assert_array_equal(activity.frame_features(x, 8000, names=("band_db",)), both[:1])
    swapped = activity.frame_features(x, 8000, names=("full_db", "band_db"))
    np.testing.assert_array_equal(swapped, both[::-1])
    assert not np.array_equal(both[0], both[1])
    with pytest.raises(activity.ParameterError):
        activity.frame_features(x, 8000, names=("band",))


def _level_by_cumsum(y: np.ndarray, rate: int, window_s: float) -> np.ndarray:
    """The straightforward level: a cumulative sum of squares over the padded signal."""
    hop, win = rate // 100, max(rate // 100, int(round(window_s * rate)))
    n_frames, half = 1 + y.size // hop, win // 2
    padded = np.zeros(y.size + 2 * half + hop)
    padded[half : half + y.size] = y
    cumsum = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = np.arange(n_frames) * hop
    energy = (cumsum[starts + win] - cumsum[starts]) / win
    with np.errstate(divide="ignore"):
        return np.maximum(10 * np.log10(energy), -120.0).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 11025])
@pytest.mark.parametrize("window_s", [0.03, 0.025, 0.1, 0.0137])
def test_level_by_block_sums_equals_cumulative_sums(rate: int, window_s: float) -> None:
    """loudness.level_db adds short block sums (cheaper than a cumulative sum): the same
    float32 levels (to the last bit on nearly every frame), silence and edges included."""
    from dsp import loudness

    x = decode(AMI_8K).samples[0, : 8000 * 20].astype(np.float64)
    if rate != 8000:
        import scipy.signal

        x = scipy.signal.resample_poly(x, rate, 8000)
    x[rate * 2 : rate * 3] = 0.0  # digital silence
    x = x[: x.size - 37]  # a length off the hop grid
    got = loudness.level_db(x.astype(np.float32), rate, window_s=window_s)
    want = _level_by_cumsum(x.astype(np.float32), rate, window_s)
    assert got.shape == want.shape == (1 + x.size // (rate // 100),)
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert np.mean(got == want) > 0.99
    assert (got == -120.0).sum() > 50 and got.max() > -40.0


def test_speakers_searched_together_get_their_own_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    rate = 8000
    x = _speechlike(np.random.default_rng(5), rate, 30.0)
    cands = [pitch.f0_candidates(x[0], rate), pitch.f0_candidates(x[1, : 17 * rate], rate)]
    silent = pitch.f0_candidates(np.zeros(3 * rate, np.float32), rate)
    speech = np.ones(cands[0].n_frames, dtype=bool)
    speech[1000:1500] = False  # the first speaker's mask leaves out 5 s
    signals = [cands[0], cands[1], silent]
    masks = [speech, None, None]
    alone = [pitch.speaker_f0_path(c, speech=m) for c, m in zip(signals, masks, strict=True)]
    monkeypatch.setattr(pitch, "_VITERBI_GROUP", 3)  # groups holding chunks of both speakers
    together = pitch.speaker_f0_paths(signals, speeches=masks)
    for one, both in zip(alone, together, strict=True):
        np.testing.assert_array_equal(one.f0_hz, both.f0_hz)
        np.testing.assert_array_equal(one.periodicity, both.periodicity)
    assert np.isfinite(together[0].f0_hz[:1000]).mean() > 0.2
    assert not np.isfinite(together[0].f0_hz[1000:1500]).any()
    assert not np.isfinite(together[2].f0_hz).any()
