"""dsp.activity: frame features, joint speech detection with bleed rejection, IPUs.

Synthetic two-party telephone calls are built here from real single-speaker speech (Katie and
Steve, tests/data/SOURCES.md): turns with known timing on two channels, the other party's
bleed at -15..-30 dB with a few ms delay, channel gains up to 20 dB apart, hiss and mains hum,
the 300-3400 Hz band and 8-bit mu-law at 8 kHz. The truth is measured on each party's clean
placed speech before anything is mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import scipy.signal
import soundfile

from dsp.activity import (
    FEATURE_NAMES,
    SpeechActivity,
    detect_speech,
    frame_features,
    ipus,
)
from dsp.errors import ParameterError
from dsp.frames import frame_count, segments_to_mask

DATA = Path(__file__).resolve().parents[1] / "data"
SR = 8000

F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


def _load(name: str) -> F32:
    x, sr = soundfile.read(DATA / name, dtype="float32", always_2d=False)
    assert sr == SR
    return np.asarray(x, dtype=np.float32)


VOICES = (_load("activity_katie_8k.wav"), _load("activity_steve_8k.wav"))
# Frames (10 ms) of each voice within 10 dB of its 99th-percentile speech-band energy.
LOUD_FRAMES = tuple((e := frame_features(v, SR)[0]) > np.percentile(e, 99) - 10.0 for v in VOICES)


def mu_law(x: F32) -> F32:
    """8-bit mu-law round trip (G.711-style companding and quantisation)."""
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
    q = np.round(y * 127.0) / 127.0
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(x: F32) -> F32:
    sos = scipy.signal.butter(4, [300.0, 3400.0], btype="band", fs=SR, output="sos")
    return mu_law(scipy.signal.sosfilt(sos, x, axis=-1).astype(np.float32))


def line_noise(rng: np.random.Generator, n: int, hiss_db: float, hum_hz: float) -> F32:
    t = np.arange(n) / SR
    hiss = 10 ** (hiss_db / 20) * rng.standard_normal(n)
    hum = sum(
        10 ** ((hiss_db + 10 - 6 * k) / 20) * np.sqrt(2) * np.sin(2 * np.pi * hum_hz * (k + 1) * t)
        for k in range(3)
    )
    return np.asarray(hiss + hum, dtype=np.float32)


def clean_truth(x: F32) -> Mask:
    """Speech frames of a clean single-talker signal: within 30 dB of its 99th-percentile energy."""
    e = frame_features(x, SR)[0]
    mask = e > float(np.percentile(e, 99)) - 30.0
    segs = ipus(mask, min_pause_s=0.2, min_ipu_s=0.1)
    return segments_to_mask(segs, e.shape[0])


@dataclass(frozen=True)
class PhoneCall:
    samples: F32  # (2, n) at sr, as decoded from the line
    sr: int
    clean: F32  # (2, n) each party's own speech before bleed, gain and noise
    truth: Mask  # (2, T)
    talk_time_s: npt.NDArray[np.float64]  # (2,)


def make_phone_call(
    rng: np.random.Generator,
    *,
    bleed_db: float = -20.0,
    gain_b_db: float = 0.0,
    delay_s: float = 0.004,
    hiss_db: float = -62.0,
    duration_s: float = 30.0,
    silent_b: bool = False,
    overlap_s: float = 0.0,
) -> PhoneCall:
    """A two-party call: alternating turns (0.2-1.0 s gaps), backchannels, bleed, noise."""
    n = int(duration_s * SR)
    clean = np.zeros((2, n), dtype=np.float32)
    t = 0.3
    speaker = 0
    while t < duration_s - 1.5:
        length = float(rng.uniform(1.5, 3.5))
        length = min(length, duration_s - 0.3 - t)
        src = VOICES[speaker]
        off = int(rng.integers(0, src.shape[0] - int(length * SR)))
        i0 = int(t * SR)
        seg = src[off : off + int(length * SR)]
        if not (silent_b and speaker == 1):
            clean[speaker, i0 : i0 + seg.shape[0]] += seg
        # A backchannel of the partner in the middle of longer turns.
        if length > 2.8 and not (silent_b and speaker == 0):
            # "Yeah"-like: 0.4 s around one of the partner voice's loud frames.
            other = VOICES[1 - speaker]
            loud = np.flatnonzero(LOUD_FRAMES[1 - speaker])
            boff = max(0, min(other.shape[0] - SR, int(rng.choice(loud)) * 80 - 800))
            b0 = i0 + int(0.45 * length * SR)
            clean[1 - speaker, b0 : b0 + int(0.4 * SR)] += other[boff : boff + int(0.4 * SR)]
        t += length + (-overlap_s if overlap_s > 0 else float(rng.uniform(0.2, 1.0)))
        speaker = 1 - speaker
    delay = int(round(delay_s * SR))
    leak = 10 ** (bleed_db / 20)
    gains = (1.0, 10 ** (gain_b_db / 20))
    line = np.zeros_like(clean)
    for c in (0, 1):
        bleed = np.zeros(n, dtype=np.float32)
        bleed[delay:] = clean[1 - c, : n - delay]
        noise = line_noise(rng, n, hiss_db, hum_hz=50.0 if c == 0 else 60.0)
        # The channels' gains differ after the line (recording levels, AGC): noise scales too.
        line[c] = gains[c] * (clean[c] + leak * bleed + noise)
    samples = telephone(line)
    truth = np.stack([clean_truth(clean[c]) for c in (0, 1)])
    if silent_b:
        truth[1] = False
    talk = np.array([np.sum(np.diff(ipus(truth[c]), axis=1)) for c in (0, 1)], dtype=np.float64)
    return PhoneCall(samples=samples, sr=SR, clean=clean, truth=truth, talk_time_s=talk)


def analyse(samples: F32, sr: int = SR, **kwargs: float) -> SpeechActivity:
    feats = np.stack([frame_features(samples[0], sr), frame_features(samples[1], sr)])
    return detect_speech(feats, **kwargs)


def talk_time_s(mask: Mask) -> float:
    return float(np.sum(np.diff(ipus(mask), axis=1)))


# --------------------------------------------------------------------------- frame_features


def test_frame_features_shape_and_count() -> None:
    for sr, n in ((8000, 8000), (16000, 16001), (8000, 79), (16000, 0)):
        f = frame_features(np.zeros(n, dtype=np.float32), sr)
        assert f.shape == (len(FEATURE_NAMES), frame_count(n, sr))
        assert f.dtype == np.float32
        assert np.all(np.isfinite(f))


def test_frame_features_tone_level_and_hum_rejection() -> None:
    t = np.arange(SR * 2) / SR
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    f = frame_features(tone, SR)
    expected_db = 10 * np.log10(0.1**2 / 2)  # -23.0 dBFS mean square
    np.testing.assert_allclose(f[:, 10:-10], expected_db, atol=0.5)
    hum = (0.1 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    g = frame_features(hum, SR)
    # The full-band row sees the hum, the speech band removes it by > 30 dB.
    assert np.median(g[1]) == pytest.approx(expected_db, abs=0.5)
    assert np.median(g[0]) < expected_db - 30


def test_frame_features_is_frame_local_blockwise_equals_whole() -> None:
    x = VOICES[0]
    whole = frame_features(x, SR)
    # The pipeline's way: blocks of 3 s with 0.1 s context either side, trimmed and joined.
    hop, block, ctx = 80, 3 * SR, int(0.1 * SR)
    parts = []
    for b0 in range(0, x.shape[0], block):
        lo = max(0, b0 - ctx)
        hi = min(x.shape[0], b0 + block + ctx)
        f = frame_features(x[lo:hi], SR)
        first = (b0 - lo) // hop
        n_frames = min(block, x.shape[0] - b0) // hop
        parts.append(f[:, first : first + n_frames])
    joined = np.concatenate(parts, axis=1)
    assert joined.shape[1] == whole.shape[1] - 1
    np.testing.assert_allclose(joined, whole[:, : joined.shape[1]], atol=0.01)


def test_frame_features_rejects_bad_input() -> None:
    with pytest.raises(ParameterError):
        frame_features(np.zeros((2, 100), dtype=np.float32), SR)
    with pytest.raises(ParameterError):
        frame_features(np.zeros(100, dtype=np.float32), 4000)


def test_frame_features_does_not_mutate_input() -> None:
    x = VOICES[1][:SR].copy()
    before = x.copy()
    frame_features(x, SR)
    np.testing.assert_array_equal(x, before)


# --------------------------------------------------------------------------- detect_speech


def test_planted_bleed_is_not_speech() -> None:
    rng = np.random.default_rng(1)
    call = make_phone_call(rng, bleed_db=-15.0, silent_b=True)
    act = analyse(call.samples)
    assert act.speech[1].mean() < 0.01, "A's bleed on B's channel was taken for B's speech"
    agree = (act.speech[0] == call.truth[0]).mean()
    assert agree > 0.9
    assert act.bleed_db[1] == pytest.approx(15.0, abs=3.0)


@pytest.mark.parametrize("bleed_db", [-15.0, -30.0])
@pytest.mark.parametrize("gain_b_db", [0.0, -20.0])
def test_talk_time_on_telephone_calls(bleed_db: float, gain_b_db: float) -> None:
    rng = np.random.default_rng(int(-bleed_db - gain_b_db))
    call = make_phone_call(rng, bleed_db=bleed_db, gain_b_db=gain_b_db)
    act = analyse(call.samples)
    for c in (0, 1):
        est = talk_time_s(act.speech[c])
        assert est == pytest.approx(call.talk_time_s[c], rel=0.15), f"channel {c}"
        # Frame agreement with the clean truth, not just totals.
        assert (act.speech[c] == call.truth[c]).mean() > 0.85
    # Bleed is a signal-to-crosstalk ratio per channel: the planted path loss on both sides
    # adds up to 2x, whatever the channel gains and the talkers' loudness difference.
    if np.all(np.isfinite(act.bleed_db)):
        assert act.bleed_db.sum() == pytest.approx(-2 * bleed_db, abs=4.0)
        talker_diff_db = act.speech_level_db[0] - (act.speech_level_db[1] - gain_b_db)
        assert act.bleed_db[0] - act.bleed_db[1] == pytest.approx(2 * talker_diff_db, abs=3.0)
    else:
        # A leak under the line noise is not estimable; only at the weak end of the range.
        assert bleed_db <= -25.0
        assert np.all(act.bleed_db[np.isfinite(act.bleed_db)] > 20.0)


def test_overlapping_speech_is_kept_on_both_channels() -> None:
    rng = np.random.default_rng(7)
    call = make_phone_call(rng, bleed_db=-18.0, overlap_s=0.8)
    act = analyse(call.samples)
    both = call.truth[0] & call.truth[1]
    assert both.sum() > 100  # the plan really overlaps (> 1 s in total)
    # The truth bridges pauses < 0.2 s: compare IPUs, not raw frames.
    for c in (0, 1):
        hyp = segments_to_mask(ipus(act.speech[c]), act.n_frames)
        assert hyp[both].mean() > 0.8, f"channel {c}"


def test_third_talker_in_the_room_is_not_either_party() -> None:
    """A third voice reaching both channels 20 dB under each party's own voice is crosstalk."""
    lj, sr = soundfile.read(DATA / "ljspeech_LJ001-0004_16k.wav", dtype="float32")
    third_voice = scipy.signal.resample_poly(lj, 1, sr // SR).astype(np.float32)
    rng = np.random.default_rng(11)
    n = 24 * SR
    clean = np.zeros((2, n), dtype=np.float32)
    clean[0, 0 : 5 * SR] = VOICES[0][0 : 5 * SR]
    clean[1, 5 * SR + 4000 : 10 * SR + 4000] = VOICES[1][0 : 5 * SR]
    clean[0, 12 * SR : 17 * SR] = VOICES[0][5 * SR : 10 * SR]
    third = np.zeros(n, dtype=np.float32)
    third[18 * SR : 22 * SR] = third_voice[: 4 * SR]
    line = np.zeros_like(clean)
    for c, rel_db in ((0, -20.0), (1, -22.0)):
        scale = np.sqrt(np.mean(VOICES[c] ** 2) / np.mean(third_voice**2)) * 10 ** (rel_db / 20)
        bleed = np.zeros(n, dtype=np.float32)
        bleed[32:] = clean[1 - c, :-32]
        line[c] = clean[c] + 0.1 * bleed + scale * third + line_noise(rng, n, -62.0, 50.0)
    act = analyse(telephone(line))
    third_frames = slice(1800, 2200)
    assert act.speech[0, third_frames].mean() < 0.1
    assert act.speech[1, third_frames].mean() < 0.1
    for c in (0, 1):  # the parties' own speech is still found
        hyp = segments_to_mask(ipus(act.speech[c]), act.n_frames)
        assert hyp[clean_truth(clean[c])].mean() > 0.85


def test_line_noise_rising_mid_call_is_not_speech() -> None:
    """Hiss and hum 15 dB louder from the middle of the call on: the floor follows it."""
    rng = np.random.default_rng(3)
    call = make_phone_call(rng, bleed_db=-20.0, duration_s=60.0)
    n = call.samples.shape[1]
    extra = np.zeros_like(call.samples)
    noise = line_noise(np.random.default_rng(9), n - n // 2, -47.0, 50.0)
    extra[:, n // 2 :] = noise * np.array([[1.0], [0.5]], dtype=np.float32)
    act = analyse(call.samples + telephone(extra))
    half = act.n_frames // 2
    for c in (0, 1):
        hyp, truth = act.speech[c, half:], call.truth[c, half:]
        assert (hyp & ~truth).mean() < 0.06, f"channel {c}: noise taken for speech"
        assert talk_time_s(act.speech[c]) == pytest.approx(call.talk_time_s[c], rel=0.15)


def test_digitally_silent_channel() -> None:
    rng = np.random.default_rng(3)
    call = make_phone_call(rng, bleed_db=-25.0)
    samples = call.samples.copy()
    samples[1] = 0.0
    act = analyse(samples)
    assert not act.speech[1].any()
    assert np.isnan(act.speech_level_db[1])
    assert (act.speech[0] == call.truth[0]).mean() > 0.85


def test_noise_only_gives_no_speech() -> None:
    rng = np.random.default_rng(4)
    n = 20 * SR
    noise = np.stack([line_noise(rng, n, -50.0, 50.0), line_noise(rng, n, -40.0, 60.0)])
    act = analyse(telephone(noise))
    assert act.speech.mean() < 0.005
    assert np.all(np.isfinite(act.noise_floor_db))


def test_channel_swap_symmetry() -> None:
    rng = np.random.default_rng(5)
    call = make_phone_call(rng, bleed_db=-20.0, gain_b_db=-10.0)
    feats = np.stack([frame_features(call.samples[c], SR) for c in (0, 1)])
    a = detect_speech(feats)
    b = detect_speech(feats[::-1])
    np.testing.assert_array_equal(a.speech, b.speech[::-1])
    np.testing.assert_allclose(a.bleed_db, b.bleed_db[::-1])


def test_empty_and_nan_features_do_not_crash() -> None:
    empty = detect_speech(np.zeros((2, 2, 0)))
    assert empty.speech.shape == (2, 0)
    assert np.all(np.isnan(empty.noise_floor_db))
    nan = detect_speech(np.full((2, 2, 50), np.nan))
    assert not nan.speech.any()
    assert np.all(np.isnan(nan.bleed_db))


def test_detect_speech_validates_parameters() -> None:
    with pytest.raises(ParameterError):
        detect_speech(np.zeros((3, 2, 10)))
    with pytest.raises(ParameterError):
        detect_speech(np.zeros((2, 2, 10)), snr_db=-1.0)
    with pytest.raises(ParameterError):
        detect_speech(np.zeros((2, 2, 10)), noise_percentile=80.0)


def test_detect_speech_does_not_mutate_features() -> None:
    rng = np.random.default_rng(6)
    call = make_phone_call(rng, duration_s=8.0)
    feats = np.stack([frame_features(call.samples[c], SR) for c in (0, 1)])
    before = feats.copy()
    detect_speech(feats)
    np.testing.assert_array_equal(feats, before)


@pytest.mark.slow
def test_real_ami_headset_pair_with_crosstalk() -> None:
    """AMI FEE016 (left) / FEE013 (right), 8 kHz mu-law, with third people as crosstalk."""
    samples, sr = soundfile.read(
        DATA / "activity_ami_L-FEE016_R-FEE013_8k_ulaw.wav", dtype="float32", always_2d=True
    )
    act = analyse(np.ascontiguousarray(samples.T), sr)
    n = act.n_frames
    refs = np.zeros((2, n), dtype=bool)
    for line in (DATA / "activity_ami_L-FEE016_R-FEE013.rttm").read_text().splitlines():
        f = line.split()
        start, dur = float(f[3]), float(f[4])
        refs[int(f[2]) - 1] |= segments_to_mask(np.array([[start, start + dur]]), n)

    def bridged(m: Mask) -> Mask:
        return segments_to_mask(ipus(m, min_pause_s=0.5, min_ipu_s=0.0), n)

    for c, min_agree in ((0, 0.95), (1, 0.86)):
        h, r = bridged(act.speech[c]), bridged(refs[c])
        assert (h == r).mean() >= min_agree, f"channel {c}"
        assert (h & ~r).sum() / (~r).sum() <= 0.10, f"channel {c} false alarms"
    # Headsets: the partner's voice is 30+ dB under the wearer's (signal-to-crosstalk).
    assert np.all(act.bleed_db > 30.0)


# --------------------------------------------------------------------------- ipus


def test_ipus_bridges_short_pauses_and_drops_blips() -> None:
    mask = np.zeros(300, dtype=bool)
    mask[10:50] = True  # 0.10-0.50
    mask[65:90] = True  # pause 0.15 s -> bridged
    mask[115:150] = True  # pause 0.25 s -> kept apart
    mask[200:205] = True  # 0.05 s blip -> dropped
    mask[250:262] = True  # 0.12 s -> kept
    np.testing.assert_allclose(ipus(mask), [[0.10, 0.90], [1.15, 1.50], [2.50, 2.62]])
    # A pause of exactly min_pause_s is a real pause.
    m2 = np.zeros(100, dtype=bool)
    m2[0:20] = True
    m2[40:60] = True
    assert ipus(m2, min_pause_s=0.2).shape == (2, 2)
    assert ipus(m2, min_pause_s=0.21).shape == (1, 2)
    # Blips are judged after bridging: two 0.06 s blips 0.05 s apart make one 0.17 s IPU.
    m3 = np.zeros(100, dtype=bool)
    m3[10:16] = True
    m3[21:27] = True
    np.testing.assert_allclose(ipus(m3), [[0.10, 0.27]])


def test_ipus_edges_and_empty() -> None:
    assert ipus(np.zeros(0, dtype=bool)).shape == (0, 2)
    assert ipus(np.zeros(50, dtype=bool)).shape == (0, 2)
    np.testing.assert_allclose(ipus(np.ones(50, dtype=bool)), [[0.0, 0.5]])
    with pytest.raises(ParameterError):
        ipus(np.ones(5, dtype=bool), min_pause_s=-0.1)
    with pytest.raises(ParameterError):
        ipus(np.ones((2, 5), dtype=bool))


@pytest.mark.slow
def test_talk_time_and_turns_on_espeak_synthetic_call() -> None:
    """tests/synthcall.py: espeak-ng two-party telephone call with measured truth."""
    synthcall = pytest.importorskip("tests.synthcall")
    if not synthcall.espeak_available():
        pytest.skip("espeak-ng is not installed")
    from dsp.turns import turn_taking

    rng = np.random.default_rng(21)
    plan = synthcall.plan_call("independent", duration_s=40.0, rng=rng)
    call = synthcall.render_call(plan, bleed_db=-18.0, rng=rng)
    act = analyse(call.audio, call.sample_rate_hz)
    hyp = []
    for c in (0, 1):
        segs = [u.segments_s for u in call.utterances if u.speaker == c]
        truth = segments_to_mask(np.concatenate(segs).reshape(-1, 2), act.n_frames)
        assert talk_time_s(act.speech[c]) == pytest.approx(talk_time_s(truth), rel=0.15)
        hyp.append(ipus(act.speech[c]))
    tt = turn_taking(hyp[0], hyp[1], duration_s=call.duration_s)
    true_turns = sum(1 for t in call.turns if not t.backchannel)
    assert tt.agent.turns + tt.customer.turns == pytest.approx(true_turns, abs=2)
