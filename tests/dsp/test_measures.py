"""dsp.measures: one definition of each measure over any set of spans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import measures, pipeline, windows
from dsp.errors import ParameterError
from dsp.frames import HOP_S, mask_to_segments, segments_to_mask

# the bundled 9.7-min sample: before dsp.measures its agent spoke faster than it articulated
# (3.915 vs 3.783 syl/s), and so did 11 of its 134 windows
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "mirroring_call.opus"


def random_track(seed: int, n_frames: int = 3000) -> measures.SpeakerTrack:
    """Speech in runs with pauses, IPUs over it (pauses under 0.2 s bridged), random f0,
    levels and nuclei (some off speech: the track must drop them)."""
    rng = np.random.default_rng(seed)
    runs = rng.integers(3, 80, size=n_frames)
    speech = np.zeros(n_frames, dtype=bool)
    t, on = 0, bool(rng.integers(0, 2))
    for length in runs:
        speech[t : t + length] = on
        t += int(length)
        on = not on
        if t >= n_frames:
            break
    segments = mask_to_segments(speech)
    ipus: list[list[float]] = []
    for start, end in segments:
        if ipus and start - ipus[-1][1] < 0.2:
            ipus[-1][1] = float(end)
        else:
            ipus.append([float(start), float(end)])
    f0 = np.where(rng.random(n_frames) < 0.7, rng.normal(10.0, 3.0, n_frames), np.nan)
    return measures.SpeakerTrack.build(
        speech=speech,
        f0_st=f0,
        level_db=rng.normal(-30.0, 8.0, n_frames),
        nuclei_frames=rng.choice(n_frames, size=int(rng.integers(0, 400)), replace=False),
        ipus_s=np.array(ipus).reshape(-1, 2),
        # sounding frames: most speech frames, and some off speech (the track drops them)
        phonation=rng.random(n_frames) < 0.8,
    )


def random_spans(seed: int, n_spans: int, horizon_s: float = 32.0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    starts = rng.uniform(-1.0, horizon_s, n_spans)
    return np.column_stack([starts, starts + rng.exponential(3.0, n_spans)])


def brute_mask(spans_s: npt.NDArray[np.float64], n_frames: int) -> npt.NDArray[np.bool_]:
    """Frames inside any span, frame by frame (edges rounded to the 10 ms clock)."""
    mask = np.zeros(n_frames, dtype=bool)
    for start_s, end_s in spans_s:
        lo = int(np.clip(round(start_s / HOP_S), 0, n_frames))
        hi = int(np.clip(round(end_s / HOP_S), 0, n_frames))
        mask[lo:hi] = True
    return mask


@settings(max_examples=300, deadline=None)
@given(
    track_seed=st.integers(0, 50),
    span_seed=st.integers(0, 10_000),
    n_spans=st.integers(0, 12),
    min_phonation_s=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
)
def test_speaking_rate_never_exceeds_articulation_rate(
    track_seed: int, span_seed: int, n_spans: int, min_phonation_s: float
) -> None:
    track = random_track(track_seed)
    spans = random_spans(span_seed, n_spans)
    r = measures.rates(track, spans, min_phonation_s=min_phonation_s)
    # the same syllables over the span time and over the speech inside the spans
    mask = brute_mask(spans, track.n_frames)
    assert r.speaking_time_s == pytest.approx(mask.sum() * HOP_S)
    assert r.phonation_time_s == pytest.approx((mask & track.phonation).sum() * HOP_S)
    assert not (track.phonation & ~track.speech).any()
    assert r.syllables == int(mask[track.nuclei_frames].sum())
    assert r.phonation_time_s <= r.speaking_time_s
    assert np.isnan(r.speaking_rate_syl_per_s) == np.isnan(r.articulation_rate_syl_per_s)
    if np.isfinite(r.articulation_rate_syl_per_s):
        assert r.phonation_time_s >= min_phonation_s - 1e-9
        assert r.speaking_rate_syl_per_s <= r.articulation_rate_syl_per_s


@settings(max_examples=200, deadline=None)
@given(span_seed=st.integers(0, 10_000), n_spans=st.integers(0, 15))
def test_span_frames_merge_to_the_same_frames(span_seed: int, n_spans: int) -> None:
    spans = random_spans(span_seed, n_spans, horizon_s=10.0)
    frames = measures.span_frames(spans, 1000)
    mask = np.zeros(1000, dtype=bool)
    for lo, hi in frames:
        assert not mask[lo:hi].any()  # disjoint
        mask[lo:hi] = True
    np.testing.assert_array_equal(mask, brute_mask(spans, 1000))
    assert np.all(np.diff(frames[:, 0]) > 0) if len(frames) > 1 else True
    assert np.all(frames[1:, 0] > frames[:-1, 1])  # merged: no touching runs


def test_track_keeps_only_speech_inside_ipus() -> None:
    speech = np.zeros(100, dtype=bool)
    speech[10:40] = True
    speech[60:63] = True  # a blip no IPU holds
    track = measures.SpeakerTrack.build(
        speech=speech,
        f0_st=np.ones(100),
        level_db=np.zeros(100),
        nuclei_frames=[61, 20, 5, 30, 150],
        ipus_s=[[0.1, 0.4]],
    )
    assert track.speech.sum() == 30
    np.testing.assert_array_equal(track.nuclei_frames, [20, 30])
    assert np.isnan(track.f0_st[61]) and track.f0_st[20] == 1.0


def test_rates_of_a_turn_with_a_pause() -> None:
    # IPUs of 2 s and 1 s inside one 4 s turn (1 s of pause): 12 nuclei, one every 0.25 s
    ipus = np.array([[0.0, 2.0], [3.0, 4.0]])
    nuclei = np.concatenate([np.arange(0, 200, 25), np.arange(300, 400, 25)])
    track = measures.SpeakerTrack.build(
        speech=segments_to_mask(ipus, 500),
        f0_st=np.zeros(500),
        level_db=np.zeros(500),
        nuclei_frames=nuclei,
        ipus_s=ipus,
    )
    r = measures.rates(track, [[0.0, 4.0]])
    assert r == measures.Rates(
        syllables=12,
        speaking_time_s=pytest.approx(4.0),
        phonation_time_s=pytest.approx(3.0),
        speaking_rate_syl_per_s=pytest.approx(3.0),
        articulation_rate_syl_per_s=pytest.approx(4.0),
    )
    assert measures.speaking_rate_syl_per_s(track, [[0.0, 4.0]]) == pytest.approx(3.0)
    assert measures.articulation_rate_syl_per_s(track, [[0.0, 4.0]]) == pytest.approx(4.0)
    # one IPU: the same measure, pauses none
    one = measures.rates(track, ipus[:1])
    assert one.speaking_rate_syl_per_s == one.articulation_rate_syl_per_s == pytest.approx(4.0)
    # overlapping spans count each frame once
    assert measures.rates(track, [[0.0, 3.0], [1.0, 4.0]]) == r
    assert measures.pause_s(track, [[0.0, 4.0]]) == pytest.approx(1.0)
    assert np.isnan(measures.pause_s(track, [[0.0, 2.5]]))  # the gap is not all inside
    short = measures.rates(track, [[0.0, 0.5]], min_phonation_s=1.0)
    assert short.syllables == 2 and np.isnan(short.speaking_rate_syl_per_s)
    assert np.isnan(measures.rates(track, np.zeros((0, 2))).articulation_rate_syl_per_s)
    with pytest.raises(ParameterError):
        measures.rates(track, [[0.0, 1.0]], min_phonation_s=-1.0)
    with pytest.raises(ParameterError):
        measures.rates(track, [[0.0, 1.0, 2.0]])


def test_pause_is_the_median_gap_inside_the_spans() -> None:
    ipus = np.array([[0.0, 1.0], [1.3, 2.0], [2.5, 3.0], [4.0, 5.0]])  # gaps 0.3, 0.5, 1.0
    track = measures.SpeakerTrack.build(
        speech=segments_to_mask(ipus, 600),
        f0_st=np.zeros(600),
        level_db=np.zeros(600),
        nuclei_frames=[],
        ipus_s=ipus,
    )
    assert measures.pause_s(track, [[0.0, 5.0]]) == pytest.approx(0.5)
    assert measures.pause_s(track, [[0.0, 3.0], [3.5, 5.0]]) == pytest.approx(0.4)


def test_tone_measures_over_spans() -> None:
    n = 400
    speech = np.zeros(n, dtype=bool)
    speech[0:300] = True
    f0 = np.full(n, np.nan)
    f0[0:100] = 5.0
    f0[100:200] = 7.0
    level = np.linspace(-40.0, -20.0, n)
    track = measures.SpeakerTrack.build(
        speech=speech, f0_st=f0, level_db=level, nuclei_frames=[], ipus_s=[[0.0, 3.0]]
    )
    assert measures.pitch_level_st(track, [[0.0, 1.0]]) == 5.0
    assert measures.pitch_level_st(track, [[0.5, 1.5]]) == pytest.approx(6.0)
    assert measures.pitch_spread_st(track, [[0.0, 1.0]]) == 0.0
    assert np.isnan(measures.pitch_level_st(track, [[2.0, 3.0]]))  # unvoiced
    assert np.isnan(measures.pitch_level_st(track, [[0.0, 1.0]], min_voiced_s=2.0))
    # loudness: the median level of the speech frames only (frames 300-400 are not speech)
    assert measures.loudness_db(track, [[0.0, 4.0]]) == pytest.approx(np.median(level[:300]))
    shifted = measures.SpeakerTrack.build(
        speech=speech, f0_st=f0, level_db=level + 12.0, nuclei_frames=[], ipus_s=[[0.0, 3.0]]
    )
    assert measures.loudness_db(shifted, [[0.0, 4.0]]) == pytest.approx(
        measures.loudness_db(track, [[0.0, 4.0]]) + 12.0
    )
    assert np.isnan(measures.loudness_db(track, [[3.0, 4.0]]))


@settings(max_examples=40, deadline=None)
@given(
    track_seed=st.integers(0, 50),
    span_seed=st.integers(0, 10_000),
    window_s=st.sampled_from([3.0, 5.0, 10.0]),
)
def test_windows_measure_the_spans_inside_them(
    track_seed: int, span_seed: int, window_s: float
) -> None:
    track = random_track(track_seed)
    spans = np.concatenate([random_spans(span_seed, 8), track.ipus_s])
    starts = windows.window_starts_s(30.0, window_s=window_s, hop_s=window_s / 2)
    speech_s, values = windows.speaker_windows(
        starts, window_s=window_s, track=track, spans_s=spans, min_speech_s=0.5
    )
    speaking = values["speaking_rate_syl_per_s"]
    articulation = values["articulation_rate_syl_per_s"]
    assert not np.any(speaking > articulation)
    for w, start in enumerate(starts):
        clipped = np.column_stack(
            [np.maximum(spans[:, 0], start), np.minimum(spans[:, 1], start + window_s)]
        )
        r = measures.rates(track, clipped, min_phonation_s=0.5)
        assert speech_s[w] == pytest.approx(r.phonation_time_s)
        np.testing.assert_equal(articulation[w], r.articulation_rate_syl_per_s)
        np.testing.assert_equal(
            values["loudness_db"][w],
            measures.loudness_db(track, clipped) if np.isfinite(articulation[w]) else np.nan,
        )


@pytest.fixture(scope="module")
def sample_call() -> pipeline.AnalysisResult:
    return pipeline.analyze(SAMPLE, pipeline.AnalysisParams(window_s=20.0, hop_s=5.0))


def test_no_call_turn_or_window_speaks_faster_than_it_articulates(
    sample_call: pipeline.AnalysisResult,
) -> None:
    for role, speaker in sample_call.speakers.items():
        call = speaker.rate
        assert call.speaking_rate_syl_per_s <= call.articulation_rate_syl_per_s, role
        per_turn = speaker.units.turn_features
        speaking, articulation = per_turn["speaking_rate"], per_turn["articulation_rate"]
        assert np.isfinite(articulation).sum() >= 10
        assert np.array_equal(np.isnan(speaking), np.isnan(articulation))
        assert not np.any(speaking > articulation), role
    values = sample_call.windows.values
    articulation = values["articulation_rate_syl_per_s"]
    assert np.isfinite(articulation).sum() >= 100
    assert not np.any(values["speaking_rate_syl_per_s"] > articulation)


def test_call_values_are_the_measures_over_the_speaking_spans(
    sample_call: pipeline.AnalysisResult,
) -> None:
    speaker = sample_call.speakers["agent"]
    spans = speaker.speaking_spans_s
    assert speaker.rate == measures.rates(speaker.track, spans)
    assert speaker.pitch["median_st"] == measures.pitch_level_st(
        speaker.track, spans, min_voiced_s=0.5
    )
    assert speaker.loudness["median_db"] == measures.loudness_db(speaker.track, spans)
    assert speaker.median_pause_s == measures.pause_s(speaker.track, spans)
    # the report's call rate counts the same syllables as the turns and the IPUs outside them
    assert speaker.rate.syllables == speaker.track.nuclei_frames.size


@settings(max_examples=200, deadline=None)
@given(
    st.lists(  # values a measure takes (dB, semitones, seconds), and NaN
        st.one_of(st.floats(-1e6, 1e6, width=32), st.just(float("nan"))), min_size=1, max_size=40
    ),
    st.sampled_from([np.float32, np.float64]),
)
def test_median_is_numpys(values: list[float], dtype: type) -> None:
    x = np.asarray(values, dtype=dtype)
    expected = float(np.median(x))
    got = measures.median(x)
    assert got == expected or (np.isnan(got) and np.isnan(expected)), (values, dtype)
    assert np.isnan(measures.median(np.zeros(0)))
