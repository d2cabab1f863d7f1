"""service.live: live measures and cues on planted calls (no server)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from service.live import CueThresholds, LiveAnalyzer
from service.live_dsp import joint_f0_path, window_tracks
from tests.service.audio import alternating_turns, planted_call

SR = 8000


def _run(audio: npt.NDArray[np.int16], thresholds: CueThresholds) -> list[dict[str, Any]]:
    live = LiveAnalyzer(SR, 0, window_s=10.0, thresholds=thresholds)
    events = []
    for k in range(0, audio.shape[1], SR):
        live.feed(audio[:, k : k + SR])
        events.append(live.compute(live.snapshot()))
    return events


def _cues(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for e in events for c in e["cues"] if c["cue"] == name]


def test_events_carry_both_speakers_and_the_thresholds() -> None:
    events = _run(planted_call(alternating_turns((4.0, 4.0), 30.0), 30.0), CueThresholds())
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
    events = _run(planted_call(alternating_turns((8.0, 3.0), 40.0), 40.0), thresholds)
    pace = _cues(events, "pace_mismatch")
    assert pace and {c["speaker"] for c in pace} == {"agent"}
    assert min(c["held_s"] for c in pace) >= 5.0
    assert pace[-1]["value"] > 1.25


def test_long_silence_and_monologue() -> None:
    thresholds = CueThresholds(monologue_s=8.0, silence_s=5.0)
    audio = planted_call([(1, 0.5, 3.0, 4.0), (0, 4.0, 14.0, 4.0)], 30.0)
    events = _run(audio, thresholds)
    mono = _cues(events, "long_monologue")
    assert mono and {c["speaker"] for c in mono} == {"agent"}
    silence = _cues(events, "long_silence")
    assert silence and min(c["held_s"] for c in silence) >= 5.0
    assert all(
        e["t_s"] >= 23.0 for e in events if any(c["cue"] == "long_silence" for c in e["cues"])
    )


def test_interruption_is_reported_once() -> None:
    audio = planted_call([(0, 0.5, 6.0, 4.0), (1, 4.0, 5.0, 5.3)], 15.0)
    events = _run(audio, CueThresholds())
    found = _cues(events, "interruption")
    assert len(found) == 1 and found[0]["speaker"] == "customer"
    assert abs(found[0]["value"] - 4.0) < 0.5


def test_many_signals_pitch_in_one_search_equals_one_search_each() -> None:
    from dsp.activity import detect_speech, frame_features
    from dsp.pitch import f0_candidates, f0_path

    audio = planted_call(alternating_turns((4.0, 5.0), 12.0), 12.0)[:, 8000:88001]  # odd length
    y = audio.astype(np.float32) / 32768
    speech = detect_speech(
        np.stack([frame_features(y[c], SR, names=("band_db",)) for c in (0, 1)])
    ).speech
    cands = [f0_candidates(y[c], SR) for c in (0, 1)]
    # two streams' windows (the second shorter) and a silent one
    signals = [(cands[0], speech[0]), (cands[1], speech[1])]
    signals.append((cands[0].frames(50, cands[0].n_frames), speech[0, 50:]))
    signals.append((f0_candidates(np.zeros(8000, np.float32), SR), np.zeros(101, bool)))
    joint = joint_f0_path(signals)
    for (found_cands, mask), found in zip(signals, joint, strict=True):
        alone = f0_path(found_cands, frame_mask=mask).f0_hz.astype(np.float64)
        np.testing.assert_array_equal(found, alone[: mask.size])
    assert all(np.isfinite(found).sum() > 100 for found in joint[:3])
    assert not np.isfinite(joint[3]).any()


def test_the_buffer_gives_the_audio_not_yet_analysed_in_order() -> None:
    audio = planted_call(alternating_turns((4.0, 5.0), 25.0), 25.0)
    live = LiveAnalyzer(SR, 0, window_s=10.0)
    fed = 0
    for size in [300, 7000, 1, 80000, 333, 90000, 12345, 9]:  # shorter and longer than it
        live.feed(audio[:, fed : fed + size])
        fed += size
        work = live.snapshot()
        assert work.end == fed
        start = work.first_frame * 80 - work.left
        np.testing.assert_array_equal(work.audio, audio[:, start:fed])
        # the frames to compute are the window's (older ones are not needed)
        assert work.first_frame == max(0, 1 + fed // 80 - 1000)
        assert work.tracks.shape[2] == 0


def test_window_tracks_built_a_second_at_a_time_are_the_window_at_once() -> None:
    """Each event computes stage 1 on its new audio only; the final frames it keeps are
    the tracks the window gives when computed whole (frame-local with CONTEXT_S), pitch
    candidates on the frames the window called speech."""
    from dsp.params import AnalysisParams
    from dsp.pipeline import channel_tracks

    audio = planted_call(alternating_turns((4.0, 5.0), 25.0), 25.0)
    live = LiveAnalyzer(SR, 0, window_s=10.0)
    for k in range(0, 25 * SR, SR // 2):
        live.feed(audio[:, k : k + SR // 2])
        live.compute(live.snapshot())
    work = live.snapshot()
    kept = work.tracks  # final frames of the window
    assert kept.shape[2] >= 960 and work.first_frame == live.final_frames
    first = work.first_frame - kept.shape[2]
    y = audio.astype(np.float32) / 32768
    whole = np.stack(
        [
            np.concatenate(
                [t.reshape(-1, t.shape[-1]) for t in channel_tracks(y[c], SR, AnalysisParams())]
            )[:, first : work.first_frame]
            for c in (0, 1)
        ]
    )
    # level, features, syllable and sonority rows, and the candidates where both have one
    dense = [0, 1, 10, 11]
    np.testing.assert_allclose(kept[:, dense], whole[:, dense], atol=0.05)
    # the best candidate of clearly periodic frames (weak ones may swap rank: the NCCF
    # differs by the DC blocker's transient, see dsp.pitch.f0_candidates)
    periodic = (kept[:, 6] > 0.6) & (whole[:, 6] > 0.6)
    assert periodic.sum() > 0.9 * (whole[:, 6] > 0.6).sum() > 500
    np.testing.assert_allclose(kept[:, 2][periodic], whole[:, 2][periodic], rtol=0.01)
    # and the new frames come after them, the last ones computed again next time
    tracks, n_final, speech = window_tracks(work)
    assert tracks.shape[2] == kept.shape[2] + (1 + work.end // 80 - work.first_frame)
    assert n_final == 0 and speech.shape == (2, tracks.shape[2])


def test_a_closed_analyzer_holds_no_audio() -> None:
    live = LiveAnalyzer(SR, 0, window_s=10.0)
    live.feed(np.ones((2, SR), dtype=np.int16))
    assert live._ring.nbytes < 2 * 2 * 11 * SR
    live.close()
    live.feed(np.ones((2, SR), dtype=np.int16))  # ignored
    assert live._ring.nbytes == 0 and live._tracks.nbytes == 0
