"""The whole recipe on signals with known answers: roles, blocks, windows, warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsp import pipeline
from dsp.params import AnalysisParams
from tests.audiofiles import write_audio

SR = 8000
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "ami_two_party_8k_ulaw.wav"


def syllables(f0_hz: np.ndarray | float, duration_s: float, *, rate_hz: float = 4.0) -> np.ndarray:
    """Voiced, speech-like bursts: a harmonic complex at ``f0_hz`` amplitude-modulated at
    ``rate_hz`` syllables per second."""
    t = np.arange(int(duration_s * SR)) / SR
    f0 = np.broadcast_to(np.asarray(f0_hz, dtype=float), t.shape)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    # syllable-rate dips of ~16 dB, never silent: one continuous stretch of speech
    envelope = 0.15 + 0.85 * np.sin(np.pi * rate_hz * t) ** 2
    return (0.2 * voice * envelope).astype(np.float32)


def two_party_call(turn_s: float = 6.0, n_turns: int = 10, *, bleed: float = 0.03) -> np.ndarray:
    """Alternating turns: agent (left, 120 Hz) then customer (right, 210 Hz), with bleed."""
    rng = np.random.default_rng(0)
    left, right = [], []
    for k in range(n_turns):
        speech = syllables(120.0 if k % 2 == 0 else 210.0, turn_s)
        gap = np.zeros(int(0.5 * SR), dtype=np.float32)
        own, other = (left, right) if k % 2 == 0 else (right, left)
        own += [speech, gap]
        other += [np.zeros_like(speech), gap]
    stereo = np.stack([np.concatenate(left), np.concatenate(right)])
    stereo = stereo + bleed * stereo[::-1]
    return (stereo + 1e-4 * rng.standard_normal(stereo.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def call_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_audio(tmp_path_factory.mktemp("calls") / "call.wav", two_party_call(), SR)


def test_known_turns_talk_time_and_pitch(call_path: Path) -> None:
    result = pipeline.analyze(call_path)
    for role, f0 in (("agent", 120.0), ("customer", 210.0)):
        talk = getattr(result.turn_taking, role).talk_time_s
        assert talk == pytest.approx(30.0, rel=0.15)  # 5 turns of 6 s each
        assert result.speakers[role].pitch["median_hz"] == pytest.approx(f0, rel=0.02)
        # 4 bursts per second
        assert result.speakers[role].rate.articulation_rate_syl_per_s == pytest.approx(4.0, rel=0.1)
    assert result.turn_taking.agent.turns == 5
    assert result.turn_taking.customer.turns == 5
    assert not [w for w in result.warnings if w.code == "channel.silent"]
    # Turn timing for the mirroring step: every answer comes after the 0.5 s gap (the
    # agent's opening turn answers nobody); one IPU per turn, so no pause inside a turn.
    for role, first in (("agent", 1), ("customer", 0)):
        timing = result.speakers[role].units.turn_features
        latency = timing["latency"]
        assert np.isnan(latency[:first]).all()
        np.testing.assert_allclose(latency[first:], 0.5, atol=0.08)
        assert np.isnan(timing["pause"]).all()


def test_roles_swap_with_agent_channel(call_path: Path) -> None:
    normal = pipeline.analyze(call_path)
    swapped = pipeline.analyze(call_path, AnalysisParams(agent_channel=1))
    np.testing.assert_array_equal(
        normal.speakers["agent"].speech, swapped.speakers["customer"].speech
    )
    assert (
        swapped.speakers["agent"].pitch["median_hz"]
        == normal.speakers["customer"].pitch["median_hz"]
    )


def test_block_size_does_not_change_the_result(call_path: Path) -> None:
    big = pipeline.analyze(call_path, AnalysisParams(block_s=60.0))
    small = pipeline.analyze(call_path, AnalysisParams(block_s=7.0))
    for role in pipeline.ROLES:
        a, b = big.speakers[role], small.speakers[role]
        assert (a.speech != b.speech).mean() < 0.002
        assert a.pitch["median_hz"] == pytest.approx(b.pitch["median_hz"], rel=0.005)
        assert a.rate.syllables == pytest.approx(b.rate.syllables, abs=2)


def test_windows_follow_a_planted_pitch_change(tmp_path: Path) -> None:
    # The agent speaks at 110 Hz for the first minute and at 165 Hz (+7 st) for the second.
    n = 60 * SR
    f0 = np.where(np.arange(2 * n) < n, 110.0, 165.0)
    left = syllables(f0, 120.0)
    right = np.zeros_like(left)
    right[: 10 * SR] = syllables(220.0, 10.0)  # the customer says something at the start
    path = write_audio(tmp_path / "change.wav", np.stack([left, right]), SR)
    result = pipeline.analyze(path, AnalysisParams(window_s=20.0, hop_s=10.0))
    pitch_st = result.windows.values["pitch_median_st"][0]
    starts = result.windows.starts_s
    first = pitch_st[starts + 20.0 <= 60.0]
    second = pitch_st[starts >= 60.0]
    assert np.allclose(first, 12 * np.log2(110 / 100), atol=0.3)
    assert np.allclose(second, 12 * np.log2(165 / 100), atol=0.3)
    # windows without customer speech are null for the customer, not zero
    assert np.isnan(result.windows.values["pitch_median_st"][1][starts >= 20.0]).all()


def test_fake_stereo_and_silent_channel_warn(tmp_path: Path) -> None:
    mono = syllables(150.0, 10.0)
    fake = write_audio(tmp_path / "fake.wav", np.stack([mono, mono]), SR)
    codes = {w.code for w in pipeline.analyze(fake).warnings}
    assert "channels.identical" in codes
    silent = write_audio(tmp_path / "silent.wav", np.stack([mono, np.zeros_like(mono)]), SR)
    warnings = pipeline.analyze(silent).warnings
    assert [w.code for w in warnings].count("channel.silent") == 1
    assert "channel 1 (customer)" in next(w.message for w in warnings if w.code == "channel.silent")


def test_clipping_warns(tmp_path: Path) -> None:
    call = two_party_call(n_turns=4)
    call[0] = np.clip(call[0] * 8.0, -1.0, 1.0)
    codes = {
        w.code for w in pipeline.analyze(write_audio(tmp_path / "clip.wav", call, SR)).warnings
    }
    assert "audio.clipping" in codes


@pytest.mark.skipif(not SAMPLE.exists(), reason="bundled sample missing")
def test_real_sample_speakers_and_turns() -> None:
    result = pipeline.analyze(SAMPLE)
    agent, customer = result.turn_taking.agent, result.turn_taking.customer
    # Reference turns (samples/ami_two_party.rttm): FEE016 opens and closes with a long
    # turn, FEE013 holds the floor in between while FEE016 backchannels.
    assert agent.turns == 2 and customer.turns == 1
    assert agent.backchannels >= 3
    assert 12.0 < agent.longest_monologue_s < 17.0
    assert 18.0 < customer.longest_monologue_s < 26.0
    for role in pipeline.ROLES:
        assert 140 < result.speakers[role].pitch["median_hz"] < 220  # two women


@pytest.mark.skipif(not SAMPLE.exists(), reason="bundled sample missing")
def test_real_sample_segments_match_reference_turns() -> None:
    """The report's segments against the hand-made reference turns (issue target: >= 93% of
    10 ms frames agree once pauses under 0.5 s are bridged on both sides, <= 5% false alarms
    over reference non-speech). FEE013's reference turn holds 0.6-0.9 s thinking pauses: the
    turn-level joining of segments is what closes them; raw IPUs agree on only ~0.91."""
    from bench.activity_ami import bridged  # the activity target's 0.5 s bridging
    from dsp.frames import segments_to_mask

    result = pipeline.analyze(SAMPLE)
    n = result.speakers["agent"].speech.shape[0]
    reference = {"FEE016": "agent", "FEE013": "customer"}  # channel 0 = agent
    refs = {role: np.zeros(n, dtype=bool) for role in pipeline.ROLES}
    for line in SAMPLE.with_name("ami_two_party.rttm").read_text().splitlines():
        f = line.split()
        start, dur = float(f[3]), float(f[4])
        refs[reference[f[7]]] |= segments_to_mask(np.array([[start, start + dur]]), n)

    for role in pipeline.ROLES:
        hyp = bridged(segments_to_mask(result.speakers[role].segments_s, n))
        ref = bridged(refs[role])
        assert (hyp == ref).mean() >= 0.93, role
        assert (hyp & ~ref).sum() / (~ref).sum() <= 0.05, role
