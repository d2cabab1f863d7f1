"""Tests of the synthetic call generator (tests/synthcall.py): audio, truth and planners."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest

from dsp.frames import HOP_S, frame_count, hop_samples
from tests import synthcall as sc

needs_espeak = pytest.mark.skipif(not sc.espeak_available(), reason="espeak-ng is not on PATH")

# A hand-written call: male agent, female customer, known pitches, gains and timing.
TURNS = [
    sc.TurnSpec(
        0,
        ("Thanks for calling, how can I help you today?", "I can look at your account."),
        pitch_hz=(100.0, 110.0),
        pitch_range_st=1.2,
        rate_syl_per_s=4.5,
        gain_db=0.0,
        gap_s=0.4,
        pause_s=0.5,
    ),
    sc.TurnSpec(1, "okay", pitch_hz=200.0, gain_db=-3.0, backchannel=True, at_fraction=0.5),
    sc.TurnSpec(
        1,
        "My last invoice was much higher than the price on the website.",
        pitch_hz=200.0,
        pitch_range_st=1.5,
        rate_syl_per_s=5.0,
        gain_db=-4.0,
        gap_s=0.6,
    ),
    sc.TurnSpec(
        0,
        "I see the discount was never applied, I will fix that now.",
        pitch_hz=126.0,
        pitch_range_st=1.0,
        rate_syl_per_s=4.0,
        gain_db=6.0,
        gap_s=0.3,
    ),
    sc.TurnSpec(
        1,
        ("Great, thank you.", "Will it show on the next bill?"),
        pitch_hz=(240.0, 240.0),
        rate_syl_per_s=5.5,
        gain_db=2.0,
        gap_s=-0.4,
        pause_s=0.3,
    ),
]


@pytest.fixture(scope="module")
def call() -> sc.SynthCall:
    return sc.render_call(TURNS, rng=np.random.default_rng(7))


@pytest.fixture(scope="module")
def dry_call() -> sc.SynthCall:
    """The same call with no noise and no companding: only speech and bleed."""
    return sc.render_call(TURNS, rng=np.random.default_rng(7), noise_db=-math.inf, mulaw=False)


def _frame_rms_db(x: npt.NDArray[np.float32], sr: int) -> npt.NDArray[np.float64]:
    hop = hop_samples(sr)
    n = frame_count(len(x), sr)
    padded = np.zeros(n * hop + hop, dtype=np.float64)
    padded[hop // 2 : hop // 2 + len(x)] = x
    frames = padded[: n * hop].reshape(n, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def _masks(call: sc.SynthCall) -> npt.NDArray[np.bool_]:
    masks = np.zeros((2, call.n_frames), dtype=bool)
    for c, segs in enumerate(sc.truth_segments(call)):
        for s, e in segs:
            masks[c, int(round(s / HOP_S)) : int(round(e / HOP_S))] = True
    return masks


# ----------------------------------------------------------------------------- audio


@needs_espeak
def test_call_has_right_shape_rate_and_range(call: sc.SynthCall) -> None:
    assert call.sample_rate_hz == 8000
    assert call.audio.dtype == np.float32 and call.audio.ndim == 2 and call.audio.shape[0] == 2
    assert np.all(np.isfinite(call.audio)) and np.max(np.abs(call.audio)) <= 1.0
    assert call.f0_hz.shape == (2, frame_count(call.audio.shape[1], 8000))
    last_end = max(u.end_s for u in call.utterances)
    assert last_end < call.duration_s <= last_end + 0.7
    assert 8.0 < call.duration_s < 30.0
    # one truth utterance per sentence, one turn per spec, in order and on the right channel
    assert len(call.utterances) == sum(t.n_utterances for t in TURNS)
    assert [t.speaker for t in call.turns] == [t.speaker for t in TURNS]
    assert [t.backchannel for t in call.turns] == [t.backchannel for t in TURNS]


@needs_espeak
def test_16k_without_telephone_band() -> None:
    c = sc.render_call(
        TURNS[:1], rng=np.random.default_rng(0), sample_rate_hz=16000, telephone=False, mulaw=False
    )
    assert c.sample_rate_hz == 16000 and c.audio.shape[0] == 2
    spec = np.abs(np.fft.rfft(c.clean[0])) ** 2
    freqs = np.fft.rfftfreq(c.clean.shape[1], 1 / 16000)
    # without the telephone band the fundamental (about 100 Hz) is there
    assert spec[(freqs > 80) & (freqs < 250)].sum() > 0.05 * spec.sum()


@needs_espeak
def test_telephone_band_removes_low_and_high_frequencies(dry_call: sc.SynthCall) -> None:
    x = dry_call.clean[0].astype(np.float64)
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    assert spec[freqs < 150].sum() < 1e-3 * spec.sum()
    assert spec[freqs > 3700].sum() < 1e-3 * spec.sum()


@needs_espeak
def test_timing_follows_specs(call: sc.SynthCall) -> None:
    t = call.turns
    u = call.utterances
    assert t[0].start_s == pytest.approx(0.4, abs=0.011)
    # pause between the agent's two sentences, gap before the customer's turn
    assert u[1].start_s - u[0].end_s == pytest.approx(0.5, abs=0.011)
    assert t[2].start_s - t[0].end_s == pytest.approx(0.6, abs=0.011)
    assert t[3].start_s - t[2].end_s == pytest.approx(0.3, abs=0.011)
    # negative gap = overlap with the previous turn
    assert t[4].start_s - t[3].end_s == pytest.approx(-0.4, abs=0.011)
    # the backchannel sits inside the agent's turn, in its pause
    bc = t[1]
    assert bc.backchannel and t[0].start_s < bc.start_s < t[0].end_s
    assert u[0].end_s <= bc.start_s < u[1].start_s


@needs_espeak
def test_truth_segments_line_up_with_energy_in_the_right_channel(call: sc.SynthCall) -> None:
    masks = _masks(call)
    for c in (0, 1):
        db = _frame_rms_db(call.audio[c], call.sample_rate_hz)[: call.n_frames]
        own_only = masks[c] & ~masks[1 - c]
        other_only = masks[1 - c] & ~masks[c]
        silence = ~masks[0] & ~masks[1]
        own, other, quiet = (np.median(db[m]) for m in (own_only, other_only, silence))
        assert own > other + 15.0, (c, own, other)  # bleed is well below own speech
        assert own > quiet + 20.0, (c, own, quiet)
        # frames of own speech are above the noise floor (the weakest, 30 dB below the
        # utterance's peak, can sit near it)
        assert np.mean(db[own_only] > quiet + 3.0) > 0.95
        assert np.mean(db[own_only] > quiet + 10.0) > 0.8
        # and a misaligned truth (shifted by 300 ms) would not line up as well
        shifted = np.roll(own_only, 30)
        assert np.mean(db[own_only]) > np.mean(db[shifted]) + 3.0


@needs_espeak
def test_utterance_truth_is_consistent(call: sc.SynthCall) -> None:
    for u in call.utterances:
        segs = u.segments_s
        assert segs.ndim == 2 and segs.shape[1] == 2 and len(segs) >= 1
        assert segs[0, 0] == pytest.approx(u.start_s) and segs[-1, 1] == pytest.approx(u.end_s)
        assert np.all(np.diff(segs.ravel()) > 0)
        assert u.speech_s == pytest.approx(float(np.sum(segs[:, 1] - segs[:, 0])), abs=1e-6)
        assert u.syllables == sc.count_syllables(u.text)
        assert u.articulation_rate_per_s == pytest.approx(u.syllables / u.speech_s)
        assert 0.5 * u.speech_s < u.voiced_s <= u.speech_s + 1e-9
        assert u.f0_median_st == pytest.approx(float(sc.hz_to_st(u.f0_median_hz)), abs=0.05)
        assert u.level_db == sc.REF_LEVEL_DBFS + u.gain_db


@needs_espeak
def test_planted_pitch_within_a_semitone_of_pyin_on_clean_utterance(call: sc.SynthCall) -> None:
    errs = [
        float(sc.hz_to_st(u.planned_pitch_hz)) - u.f0_median_st
        for u in call.utterances
        if not u.backchannel
    ]
    assert np.max(np.abs(errs)) < 1.0, errs
    # the male and female voices are where they were planted
    assert call.turns[0].f0_median_hz == pytest.approx(105.0, rel=0.07)
    assert call.turns[2].f0_median_hz == pytest.approx(200.0, rel=0.07)


@needs_espeak
def test_truth_f0_matches_an_independent_wide_range_pyin(dry_call: sc.SynthCall) -> None:
    """The truth's narrow pyin search range and frame alignment do not bias it."""
    import librosa

    sr = dry_call.sample_rate_hz
    hop = hop_samples(sr)
    for k in (0, 3):
        u = dry_call.utterances[k]
        lo = int(round(u.start_s / HOP_S)) * hop
        hi = int(round(u.end_s / HOP_S)) * hop
        f0, voiced, _ = librosa.pyin(
            dry_call.clean[u.speaker, lo:hi].astype(np.float64),
            fmin=60.0,
            fmax=400.0,
            sr=sr,
            frame_length=512,
            hop_length=hop,
        )
        ref = float(np.median(sc.hz_to_st(f0[voiced])))
        assert ref == pytest.approx(u.f0_median_st, abs=0.3)
        # the per-frame truth track is the same pyin, frame for frame
        track = dry_call.f0_hz[u.speaker, lo // hop : hi // hop + 1]
        both = np.isfinite(track) & voiced[: track.size]
        assert both.sum() > 50
        assert (
            np.median(np.abs(sc.hz_to_st(track[both]) - sc.hz_to_st(f0[: track.size][both]))) < 0.2
        )


@needs_espeak
def test_planted_level_is_the_speech_active_rms(dry_call: sc.SynthCall) -> None:
    hop = hop_samples(dry_call.sample_rate_hz)
    for u in dry_call.utterances:
        idx = np.concatenate(
            [
                np.arange(int(round(s / HOP_S)) * hop, int(round(e / HOP_S)) * hop)
                for s, e in u.segments_s
            ]
        )
        x = dry_call.clean[u.speaker, idx].astype(np.float64)
        level = 10 * np.log10(np.mean(x**2))
        assert level == pytest.approx(u.level_db, abs=0.5), u.text
    # the +6 dB agent turn is 6 dB above the 0 dB one
    assert dry_call.turns[3].level_db - dry_call.turns[0].level_db == pytest.approx(6.0)


@needs_espeak
def test_bleed_is_present_at_the_planted_level_and_delay(dry_call: sc.SynthCall) -> None:
    masks = _masks(dry_call)
    sr = dry_call.sample_rate_hz
    hop = hop_samples(sr)
    for c in (0, 1):
        other_only = np.repeat(masks[1 - c] & ~masks[c], hop)[: dry_call.audio.shape[1]]
        leak = dry_call.audio[c, other_only].astype(np.float64)
        src = dry_call.clean[1 - c, other_only].astype(np.float64)
        level_db = 10 * np.log10(np.mean(leak**2) / np.mean(src**2))
        assert level_db == pytest.approx(-25.0, abs=2.0)
        # the leak is the partner's speech 5 ms later (40 samples at 8 kHz)
        a = dry_call.audio[c].astype(np.float64)
        b = dry_call.clean[1 - c].astype(np.float64)
        lags = np.arange(0, 120)
        xc = [np.dot(a[lag:], b[: len(b) - lag]) for lag in lags]
        assert int(lags[int(np.argmax(xc))]) == pytest.approx(40, abs=2)


@needs_espeak
def test_no_bleed_when_switched_off() -> None:
    c = sc.render_call(
        TURNS[2:4],
        rng=np.random.default_rng(1),
        bleed_db=-math.inf,
        noise_db=-math.inf,
        mulaw=False,
    )
    masks = _masks(c)
    hop = hop_samples(c.sample_rate_hz)
    only1 = np.repeat(masks[1] & ~masks[0], hop)[: c.audio.shape[1]]
    assert np.max(np.abs(c.audio[0, only1])) < 1e-3  # only the filter tail of its own speech


@needs_espeak
def test_noise_and_companding(call: sc.SynthCall, dry_call: sc.SynthCall) -> None:
    masks = _masks(call)
    # frames at least 300 ms away from anyone's speech
    busy = np.convolve((masks[0] | masks[1]).astype(float), np.ones(61), mode="same") > 0
    silence = ~busy
    assert silence.sum() > 30
    hop = hop_samples(call.sample_rate_hz)
    sil = np.repeat(silence, hop)[: call.audio.shape[1]]
    # hiss (-55 dBFS) plus hum (6 dB below) in the silences, within 2 dB
    noise_db = 10 * np.log10(np.mean(call.audio[0, sil].astype(np.float64) ** 2))
    expected = 10 * np.log10(10 ** (-5.5) + 10 ** (-6.1))
    assert noise_db == pytest.approx(expected, abs=2.0)
    assert call.hum_hz in (50.0, 60.0)
    # mu-law: at most 256 distinct sample values per channel
    assert np.unique(call.audio[0]).size <= 256
    assert np.unique(dry_call.audio[0]).size > 1000


@needs_espeak
def test_render_is_deterministic(call: sc.SynthCall) -> None:
    again = sc.render_call(TURNS, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(again.audio, call.audio)
    assert [u.start_s for u in again.utterances] == [u.start_s for u in call.utterances]


@needs_espeak
def test_write_wav_roundtrip_through_dsp_io(call: sc.SynthCall, tmp_path: Path) -> None:
    from dsp.io import decode

    encodings: tuple[tuple[Literal["pcm16", "mulaw"], float], ...] = (
        ("pcm16", 1e-4),
        ("mulaw", 0.0),
    )
    for enc, tol in encodings:
        path = tmp_path / f"call-{enc}.wav"
        sc.write_wav(path, call, encoding=enc)
        dec = decode(path)
        assert dec.info.sample_rate_hz == 8000
        assert dec.samples.shape == call.audio.shape
        assert np.max(np.abs(dec.samples - call.audio)) <= tol  # mu-law: lossless
    with pytest.raises(ValueError):
        sc.write_wav(tmp_path / "x.wav", call, encoding="alaw")  # type: ignore[arg-type]


@needs_espeak
def test_truth_windows_follow_planted_changes() -> None:
    turns = []
    for i in range(8):
        high = i >= 4
        turns.append(
            sc.TurnSpec(
                0,
                "We checked the payment on Monday for you.",
                pitch_hz=141.0 if high else 100.0,
                pitch_range_st=1.0,
                gain_db=6.0 if high else 0.0,
                rate_syl_per_s=4.0,
                gap_s=0.5,
            )
        )
        turns.append(
            sc.TurnSpec(
                1, "Thank you.", pitch_hz=200.0, gain_db=-2.0, rate_syl_per_s=5.0, gap_s=0.5
            )
        )
    c = sc.render_call(turns, rng=np.random.default_rng(3))
    half = 0.5 * c.duration_s
    w = sc.truth_windows(c, window_s=half, hop_s=half)
    assert w.pitch_st.shape == (2, 2) and w.starts_s.tolist() == [0.0, half]
    assert w.pitch_st[0, 1] - w.pitch_st[0, 0] == pytest.approx(6.0, abs=1.0)
    assert abs(w.pitch_st[1, 1] - w.pitch_st[1, 0]) < 0.7
    assert w.level_db[0, 1] - w.level_db[0, 0] == pytest.approx(6.0, abs=0.8)
    assert w.level_db[1, 0] == pytest.approx(sc.REF_LEVEL_DBFS - 2.0)
    assert np.all(w.speech_s > 0.5) and np.all(w.speech_s <= half)
    assert np.all(np.isfinite(w.rate_per_s))
    # short windows: a window with no speech of a speaker is NaN, not an error
    w2 = sc.truth_windows(c, window_s=0.3, hop_s=0.1)
    assert np.isnan(w2.pitch_st[0, 0]) and np.isnan(w2.level_db[1, 0])
    assert np.all(np.isnan(w2.pitch_st) | (w2.speech_s > 0))


@needs_espeak
def test_planned_call_renders_near_its_duration() -> None:
    rng = np.random.default_rng(11)
    plan = sc.plan_call("follow", duration_s=30.0, rng=rng)
    c = sc.render_call(plan, rng=rng)
    assert 24.0 < c.duration_s < 40.0
    errs = [
        float(sc.hz_to_st(u.planned_pitch_hz)) - u.f0_median_st
        for u in c.utterances
        if not u.backchannel
    ]
    assert np.median(np.abs(errs)) < 0.6 and np.max(np.abs(errs)) < 1.5
    # truth JSON has no NaN and names every turn
    import json

    d = sc.truth_to_dict(c)
    text = json.dumps(d, allow_nan=False)
    assert len(d["turns"]) == len(plan) and "segments_s" in text


@needs_espeak
def test_correction_steps_bring_each_sentence_closer_to_its_plan() -> None:
    def misses(steps: int, tolerance: float) -> npt.NDArray[np.float64]:
        rng = np.random.default_rng(11)
        plan = sc.plan_call("follow", duration_s=30.0, rng=rng, feature="articulation_rate")
        c = sc.render_call(plan, rng=rng, correction_steps=steps, tolerance=tolerance)
        return np.array(
            [
                (
                    u.f0_median_st - float(sc.hz_to_st(u.planned_pitch_hz)),
                    u.articulation_rate_per_s - u.planned_rate_syl_per_s,
                )
                for u in c.utterances
                if not u.backchannel
            ]
        )

    once, corrected = misses(0, 1.0), misses(4, 0.25)
    assert once.shape == corrected.shape and len(once) >= 6
    rms_once, rms_corrected = (
        np.sqrt(np.mean(once**2, axis=0)),
        np.sqrt(np.mean(corrected**2, axis=0)),
    )
    # articulation rate: one render misses by ~0.3 syllables/s, corrected within ~0.1
    assert rms_corrected[1] < 0.5 * rms_once[1] and rms_corrected[1] < 0.2
    assert rms_corrected[0] <= rms_once[0] and rms_corrected[0] < 0.25


def test_render_rejects_bad_parameters() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sc.render_call([], rng=rng)
    with pytest.raises(ValueError):
        sc.render_call(TURNS, rng=rng, sample_rate_hz=4000)
    with pytest.raises(ValueError):
        sc.render_call(TURNS, rng=rng, correction_steps=-1)
    with pytest.raises(ValueError):
        sc.render_call(TURNS, rng=rng, tolerance=0.0)


# ----------------------------------------------------------------------------- words


def test_count_syllables() -> None:
    assert sc.count_syllables("tomorrow") == 3
    assert sc.count_syllables("Thanks for calling.") == 4
    assert sc.count_syllables("mm-hmm") == 2
    assert sc.count_syllables("flurbix") == 2  # not in the dictionary: vowel groups
    assert sc.count_syllables("") == 0
    rng = np.random.default_rng(0)
    for n in (3, 8, 15):
        assert n <= sc.count_syllables(sc.words_for_syllables(n, rng)) <= n + 4


# ----------------------------------------------------------------------------- planners


def _exchanges(turns: list[sc.TurnSpec], feature: str, follower: int) -> npt.NDArray[np.float64]:
    """Rows (leader final, follower initial, follower previous final) for each exchange."""
    v = sc.planned_turn_values(turns, feature)
    rows = []
    last_own = math.nan
    for k in range(1, len(v["speaker"])):
        if v["speaker"][k] == follower and v["speaker"][k - 1] != follower:
            rows.append((v["final"][k - 1], v["initial"][k], last_own))
        if v["speaker"][k] == follower:
            last_own = v["final"][k]
    arr = np.asarray(rows, dtype=np.float64)
    return arr[np.isfinite(arr).all(axis=1)]


def _partial_r(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], z: npt.NDArray[np.float64]
) -> float:
    """Correlation of x and y with z regressed out of both."""
    zz = np.column_stack([np.ones_like(z), z])
    rx = x - zz @ np.linalg.lstsq(zz, x, rcond=None)[0]
    ry = y - zz @ np.linalg.lstsq(zz, y, rcond=None)[0]
    return float(np.corrcoef(rx, ry)[0, 1])


@pytest.mark.parametrize("feature", sc.FEATURES)
@pytest.mark.parametrize("follower", ["customer", "agent"])
def test_follow_plans_the_following_they_claim(feature: str, follower: str) -> None:
    rng = np.random.default_rng(100 + sc.FEATURES.index(feature))
    f = sc.ROLES[follower]
    turns = sc.plan_call("follow", duration_s=1200.0, rng=rng, follower=follower, feature=feature)
    ex = _exchanges(turns, feature, f)
    assert len(ex) > 60
    forward = _partial_r(ex[:, 0], ex[:, 1], ex[:, 2])
    # the other direction: the leader does not follow the follower
    back = _exchanges(turns, feature, 1 - f)
    backward = _partial_r(back[:, 0], back[:, 1], back[:, 2])
    assert forward > 0.5, (feature, follower, forward)
    assert abs(backward) < 0.3, (feature, follower, backward)


@pytest.mark.parametrize("plant", ["edge", "turn"])
def test_follow_plans_several_features_at_once(plant: str) -> None:
    # the bundled mirroring sample: the agent follows the customer in two features
    turns = sc.plan_call(
        "follow", duration_s=1200.0, rng=np.random.default_rng(11), follower="agent",
        feature=("pitch_level", "speaking_rate"), strength=1.0 if plant == "turn" else 0.6,
        plant=plant,
    )  # fmt: skip
    for feature in sc.FEATURES:
        ex, back = _exchanges(turns, feature, 0), _exchanges(turns, feature, 1)
        forward = _partial_r(ex[:, 0], ex[:, 1], ex[:, 2])
        backward = _partial_r(back[:, 0], back[:, 1], back[:, 2])
        assert abs(backward) < 0.3, (feature, backward)
        if feature in ("pitch_level", "speaking_rate"):
            assert forward > 0.8, (feature, forward)
        elif feature != "articulation_rate":  # carries the speaking rate's plant
            assert abs(forward) < 0.3, (feature, forward)


@pytest.mark.parametrize("feature", ["pitch_variability", "articulation_rate"])
def test_turn_plant_copies_the_leaders_whole_turn(feature: str) -> None:
    # Edge planting copies into the follower's first sentence only, so by the last sentence
    # of a longer turn the follower's own walk has taken over; turn planting (strength 1)
    # makes every sentence of the turn the leader's previous turn, mean for mean.
    def last_vs_leader_mean(plant: str) -> float:
        turns = sc.plan_call(
            "follow", duration_s=1200.0, rng=np.random.default_rng(7), follower="agent",
            feature=feature, strength=1.0, plant=plant,
        )  # fmt: skip
        main = [t for t in turns if not t.backchannel]
        pairs = []
        for lead, own in zip(main, main[1:], strict=False):
            if own.speaker == 0 and lead.speaker == 1 and own.n_utterances > 1:
                lv = sc.planned_utterance_values(lead, feature)
                pairs.append((float(np.mean(lv)), sc.planned_utterance_values(own, feature)[-1]))
        assert len(pairs) > 40
        x, y = np.asarray(pairs).T
        return float(np.corrcoef(x, y)[0, 1])

    assert last_vs_leader_mean("turn") > 0.99
    assert last_vs_leader_mean("edge") < 0.8


@pytest.mark.parametrize("feature", sc.FEATURES)
def test_independent_plans_have_no_following(feature: str) -> None:
    turns = sc.plan_call("independent", duration_s=1200.0, rng=np.random.default_rng(5))
    for f in (0, 1):
        ex = _exchanges(turns, feature, f)
        assert abs(_partial_r(ex[:, 0], ex[:, 1], ex[:, 2])) < 0.3, (feature, f)


def _third_distance(turns: list[sc.TurnSpec], feature: str) -> tuple[float, float]:
    v = sc.planned_turn_values(turns, feature)
    k = len(v["speaker"])
    out = []
    for part in (slice(0, k // 3), slice(2 * k // 3, k)):
        spk, val = v["speaker"][part], v["initial"][part]
        out.append(abs(np.mean(val[spk == 0]) - np.mean(val[spk == 1])))
    return out[0], out[1]


@pytest.mark.parametrize(
    "feature", ["pitch_level", "pitch_variability", "loudness", "articulation_rate"]
)
def test_converge_and_diverge_plans(feature: str) -> None:
    scale = {
        "pitch_level": 1.0,
        "pitch_variability": 0.3,
        "loudness": 1.5,
        "articulation_rate": 0.4,
    }[feature]
    for seed in range(3):
        conv = sc.plan_call("converge", duration_s=600.0, rng=np.random.default_rng(seed))
        first, last = _third_distance(conv, feature)
        assert last < first - scale, ("converge", feature, seed, first, last)
        div = sc.plan_call("diverge", duration_s=600.0, rng=np.random.default_rng(seed))
        first, last = _third_distance(div, feature)
        assert last > first + scale, ("diverge", feature, seed, first, last)


def test_converge_with_one_mover_keeps_the_other_still() -> None:
    turns = sc.plan_call(
        "converge",
        duration_s=600.0,
        rng=np.random.default_rng(2),
        follower="customer",
        feature="pitch_level",
        female=(True, True),
    )
    v = sc.planned_turn_values(turns, "pitch_level")
    k = len(v["speaker"])
    early, late = slice(0, k // 3), slice(2 * k // 3, k)
    move = [
        abs(
            np.mean(v["initial"][late][v["speaker"][late] == s])
            - np.mean(v["initial"][early][v["speaker"][early] == s])
        )
        for s in (0, 1)
    ]
    assert move[1] > 1.0 and move[0] < 0.7, move


def test_varying_plans_vary_strongly() -> None:
    var = sc.plan_call("varying", duration_s=300.0, rng=np.random.default_rng(4))
    ind = sc.plan_call("independent", duration_s=300.0, rng=np.random.default_rng(4))
    for feature in ("pitch_level", "loudness", "articulation_rate"):
        for s in (0, 1):
            sd = [
                np.std(
                    sc.planned_turn_values(t, feature)["initial"][
                        sc.planned_turn_values(t, feature)["speaker"] == s
                    ]
                )
                for t in (var, ind)
            ]
            assert sd[0] > 1.3 * sd[1], (feature, s, sd)


@pytest.mark.parametrize("kind", sc.KINDS)
def test_plans_have_realistic_turn_structure(kind: str) -> None:
    turns = sc.plan_call(kind, duration_s=600.0, rng=np.random.default_rng(9))
    main = [t for t in turns if not t.backchannel]
    bcs = [t for t in turns if t.backchannel]
    assert all(a.speaker != b.speaker for a, b in zip(main, main[1:], strict=False))
    assert main[0].speaker == 0
    assert {t.n_utterances for t in main} == {1, 2, 3, 4}
    gaps = np.array([t.gap_s for t in main[1:]])
    assert np.all((gaps >= -0.7) & (gaps <= 1.5)) and np.any(gaps < 0)
    assert np.mean(gaps > 0.0) > 0.1 and np.median(gaps) < 1.0
    assert len(bcs) >= 5
    assert all(isinstance(t.text, str) and t.text in sc.BACKCHANNELS for t in bcs)
    # planned length is close to the request (render adds espeak's own timing)
    dur = 0.0
    for t in main:
        assert isinstance(t.text, tuple)
        syl = sum(sc.count_syllables(str(x)) for x in t.text)
        dur += max(t.gap_s, 0.0) + t.n_utterances * 0.15 + syl / sc.planned_speaking_rate(t)
    assert 0.8 * 600 < dur < 1.2 * 600


def test_plan_rejects_bad_parameters() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sc.plan_call("mirror", rng=rng)
    with pytest.raises(ValueError):
        sc.plan_call("follow", rng=rng, feature="timbre")
    with pytest.raises(ValueError):
        sc.plan_call("follow", rng=rng, follower="both")
    with pytest.raises(ValueError):
        sc.plan_call("follow", rng=rng, strength=1.5)
    with pytest.raises(ValueError):
        sc.plan_call("follow", rng=rng, plant="word")
    with pytest.raises(ValueError):
        sc.plan_call("follow", rng=rng, feature=("speaking_rate", "articulation_rate"))
    with pytest.raises(ValueError):
        sc.plan_call("follow", rng=rng, feature=("pitch_level", "timbre"))
    with pytest.raises(ValueError):
        sc.plan_call("converge", rng=rng, feature=("pitch_level", "loudness"))
