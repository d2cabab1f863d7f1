"""service.live: live measures and cues on planted calls (no server)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from service.live import CueThresholds, LiveAnalyzer, joint_f0
from tests.service.audio import _voiced

SR = 8000


def _speech(duration_s: float, f0_hz: float, syllables_per_s: float) -> npt.NDArray[np.float64]:
    t = np.arange(int(duration_s * SR)) / SR
    envelope = np.sin(np.pi * syllables_per_s * t) ** 2
    return 0.3 * envelope * _voiced(t, f0_hz, SR)


def _call(turns: list[tuple[int, float, float, float]], total_s: float) -> npt.NDArray[np.int16]:
    """turns: (channel, start_s, duration_s, syllables_per_s); agent on channel 0."""
    rng = np.random.default_rng(0)
    out = 1e-3 * rng.standard_normal((2, int(total_s * SR)))
    for channel, start, duration, rate in turns:
        piece = _speech(duration, 120.0 if channel == 0 else 180.0, rate)
        a = int(start * SR)
        out[channel, a : a + piece.size] += piece
    return np.round(np.clip(out, -1, 1) * 32767).astype(np.int16)


def _run(audio: npt.NDArray[np.int16], thresholds: CueThresholds) -> list[dict[str, Any]]:
    live = LiveAnalyzer(SR, 0, window_s=10.0, thresholds=thresholds)
    events = []
    for k in range(0, audio.shape[1], SR):
        live.feed(audio[:, k : k + SR])
        events.append(live.compute(*live.snapshot()))
    return events


def _alternating(
    rates: tuple[float, float], total_s: float
) -> list[tuple[int, float, float, float]]:
    turns = []
    start, channel = 0.5, 0
    while start < total_s - 4:
        turns.append((channel, start, 3.0, rates[channel]))
        start += 3.4
        channel = 1 - channel
    return turns


def _cues(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for e in events for c in e["cues"] if c["cue"] == name]


def test_events_carry_both_speakers_and_the_thresholds() -> None:
    events = _run(_call(_alternating((4.0, 4.0), 30.0), 30.0), CueThresholds())
    last = events[-1]
    assert last["t_s"] == 30.0 and last["window_s"] == 10.0
    agent, customer = last["speakers"]["agent"], last["speakers"]["customer"]
    assert agent["channel"] == 0 and customer["channel"] == 1
    assert abs(agent["talk_share"] + customer["talk_share"] - 1) < 1e-6
    assert 0.35 < agent["talk_share"] < 0.65
    pitch = [[e["speakers"][r]["pitch_hz"] for e in events[5:]] for r in ("agent", "customer")]
    assert abs(np.median(pitch[0]) - 120) < 10 and abs(np.median(pitch[1]) - 180) < 15
    assert agent["loudness_db"] is not None and agent["speaking_rate"] is not None
    assert last["thresholds"] == CueThresholds().as_dict()
    # a calm call: same pace, no long silence, no monologue, no interruption
    assert all(e["cues"] == [] for e in events)


def test_pace_mismatch_fires_after_it_held() -> None:
    thresholds = CueThresholds(hold_s=5.0)
    events = _run(_call(_alternating((8.0, 3.0), 40.0), 40.0), thresholds)
    pace = _cues(events, "pace_mismatch")
    assert pace and {c["speaker"] for c in pace} == {"agent"}
    assert min(c["held_s"] for c in pace) >= 5.0
    assert pace[-1]["value"] > 1.25


def test_long_silence_and_monologue() -> None:
    thresholds = CueThresholds(monologue_s=8.0, silence_s=5.0)
    audio = _call([(1, 0.5, 3.0, 4.0), (0, 4.0, 14.0, 4.0)], 30.0)
    events = _run(audio, thresholds)
    mono = _cues(events, "long_monologue")
    assert mono and {c["speaker"] for c in mono} == {"agent"}
    silence = _cues(events, "long_silence")
    assert silence and min(c["held_s"] for c in silence) >= 5.0
    assert all(
        e["t_s"] >= 23.0 for e in events if any(c["cue"] == "long_silence" for c in e["cues"])
    )


def test_interruption_is_reported_once() -> None:
    audio = _call([(0, 0.5, 6.0, 4.0), (1, 4.0, 5.0, 5.3)], 15.0)
    events = _run(audio, CueThresholds())
    found = _cues(events, "interruption")
    assert len(found) == 1 and found[0]["speaker"] == "customer"
    assert abs(found[0]["value"] - 4.0) < 0.5


def test_many_signals_pitch_in_one_search_equals_one_search_each() -> None:
    from dsp.activity import detect_speech, frame_features
    from dsp.pitch import f0_track

    audio = _call(_alternating((4.0, 5.0), 12.0), 12.0)[:, 8000:88001]  # odd length
    y = audio.astype(np.float32) / 32768
    speech = detect_speech(
        np.stack([frame_features(y[c], SR, names=("band_db",)) for c in (0, 1)])
    ).speech
    # two streams' windows (the second shorter) and a silent one
    signals = [(y[0], speech[0]), (y[1], speech[1]), (y[0, 4000:], speech[0, 50:])]
    signals.append((np.zeros(8000, np.float32), np.zeros(101, bool)))
    joint = joint_f0(signals, SR)
    for (signal, mask), found in zip(signals, joint, strict=True):
        alone = f0_track(signal, SR, frame_mask=mask).f0_hz.astype(np.float64)
        np.testing.assert_allclose(found, alone[: mask.size], atol=1e-3)
    assert all(np.isfinite(found).sum() > 100 for found in joint[:3])
    assert not np.isfinite(joint[3]).any()


def test_the_circular_window_gives_the_last_seconds_in_order() -> None:
    audio = _call(_alternating((4.0, 5.0), 25.0), 25.0)
    live = LiveAnalyzer(SR, 0, window_s=10.0)
    fed = 0
    for size in [300, 7000, 1, 80000, 333, 90000, 12345, 9]:  # shorter and longer than it
        live.feed(audio[:, fed : fed + size])
        fed += size
        window, end = live.snapshot()
        assert end == fed
        np.testing.assert_array_equal(window, audio[:, max(0, fed - 10 * SR) : fed])


def test_a_closed_analyzer_holds_no_audio() -> None:
    live = LiveAnalyzer(SR, 0, window_s=10.0)
    live.feed(np.ones((2, SR), dtype=np.int16))
    assert live._ring.nbytes == 2 * 2 * 10 * SR
    live.close()
    live.feed(np.ones((2, SR), dtype=np.int16))  # ignored
    assert live._ring.nbytes == 0
