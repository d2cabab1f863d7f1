"""service.jitter: frames placed by position, reordered, de-duplicated, gaps silent."""

from __future__ import annotations

import numpy as np
import pytest

from service.jitter import JitterBuffer


def _frames(n_frames: int, size: int = 160, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(-3000, 3000, size=(channels, n_frames * size)).astype(np.int16)


def _collect(buffer: JitterBuffer, out: list[np.ndarray]) -> None:
    block = buffer.release()
    if block.shape[1]:
        out.append(block)


def test_in_order_frames_come_out_as_sent() -> None:
    audio = _frames(50)
    buffer = JitterBuffer(2, delay_samples=800, max_jump_samples=80000)
    out: list[np.ndarray] = []
    for start in range(0, audio.shape[1], 160):
        for c in (0, 1):
            assert buffer.push(c, start, audio[c, start : start + 160]) == "placed"
        _collect(buffer, out)
    out.append(buffer.flush())
    assert np.array_equal(np.concatenate(out, axis=1), audio)
    assert buffer.stats.filled_samples == [0, 0]


def test_audio_without_holes_is_released_at_once_and_a_hole_holds_it_back() -> None:
    audio = _frames(20)
    buffer = JitterBuffer(2, delay_samples=1600, max_jump_samples=80000)
    buffer.push(0, 0, audio[0, :160])
    assert buffer.release().shape == (2, 0)  # channel 1 has nothing yet
    buffer.push(1, 0, audio[1, :160])
    assert np.array_equal(buffer.release(), audio[:, :160])  # both hold it: no wait
    for s in range(320, 1600, 160):  # frame 1 (160..320) missing on both channels
        buffer.push(0, s, audio[0, s : s + 160])
        buffer.push(1, s, audio[1, s : s + 160])
    assert buffer.release().shape == (2, 0)  # the hole waits for its frame
    buffer.push(1, 160, audio[1, 160:320])
    buffer.push(0, 160, audio[0, 160:320])
    assert np.array_equal(buffer.release(), audio[:, 160:1600])
    assert buffer.push(0, 160, audio[0, 160:320]) == "duplicate"  # already released
    assert buffer.stats.late == 0 and buffer.stats.duplicates == 1


def test_reordered_within_the_window_and_duplicates_are_dropped() -> None:
    audio = _frames(200)
    pushes = [(c, s) for s in range(0, audio.shape[1], 160) for c in (0, 1)]
    rng = np.random.default_rng(0)
    shuffled: list[tuple[int, int]] = []
    for g in range(0, len(pushes), 10):  # 10 pushes = 5 frames of 20 ms: inside 100 ms
        group = pushes[g : g + 10]
        shuffled += [group[k] for k in rng.permutation(len(group))]
    shuffled += shuffled[100:110]  # duplicates still pending
    buffer = JitterBuffer(2, delay_samples=1600, max_jump_samples=80000)
    out: list[np.ndarray] = []
    results = []
    for c, s in shuffled[:110] + shuffled[-10:] + shuffled[110:-10]:
        results.append(buffer.push(c, s, audio[c, s : s + 160]))
        _collect(buffer, out)
    out.append(buffer.flush())
    assert np.array_equal(np.concatenate(out, axis=1), audio)
    assert results.count("duplicate") == 10
    assert buffer.stats.duplicates == 10 and buffer.stats.late == 0


def test_gaps_are_silence_and_counted() -> None:
    audio = _frames(20)
    buffer = JitterBuffer(2, delay_samples=0, max_jump_samples=80000)
    for s in range(0, audio.shape[1], 160):
        if s == 800:
            continue  # frame 5 of channel 1 never came
        buffer.push(0, s, audio[0, s : s + 160])
        buffer.push(1, s, audio[1, s : s + 160])
    buffer.push(0, 800, audio[0, 800:960])
    out = buffer.flush()
    expected = audio.copy()
    expected[1, 800:960] = 0
    assert np.array_equal(out, expected)
    assert buffer.stats.filled_samples == [0, 160]


def test_a_frame_after_its_place_was_released_is_late() -> None:
    audio = _frames(10)
    buffer = JitterBuffer(1, delay_samples=0, max_jump_samples=80000)
    for s in range(160, audio.shape[1], 160):
        buffer.push(0, s, audio[0, s : s + 160])
    first = buffer.release()
    assert first.shape == (1, 1600) and not first[0, :160].any()  # frame 0 missing: silence
    assert buffer.push(0, 0, audio[0, :160]) == "late"
    assert buffer.stats.late == 1


def test_a_frame_that_overlaps_the_released_part_keeps_its_new_samples() -> None:
    buffer = JitterBuffer(1, delay_samples=0, max_jump_samples=80000)
    buffer.push(0, 0, np.full(100, 1, dtype=np.int16))
    assert buffer.release().shape == (1, 100)
    assert buffer.push(0, 50, np.full(100, 2, dtype=np.int16)) == "placed"
    out = buffer.flush()
    assert out.shape == (1, 50) and (out == 2).all()


def test_a_timestamp_far_ahead_is_refused() -> None:
    buffer = JitterBuffer(2, delay_samples=800, max_jump_samples=8000)
    assert buffer.push(0, 10**12, np.ones(160, dtype=np.int16)) == "too_far"
    assert buffer.push(0, -160, np.ones(160, dtype=np.int16)) == "late"
    assert buffer.flush().shape == (2, 0)


def test_frames_split_across_releases_are_kept_whole() -> None:
    audio = _frames(4, size=1000, channels=1)
    buffer = JitterBuffer(1, delay_samples=300, max_jump_samples=80000)
    parts = []
    for s in range(0, 4000, 1000):
        buffer.push(0, s, audio[0, s : s + 1000])
        parts.append(buffer.release())  # releases up to 300 samples short of the end
    parts.append(buffer.flush())
    assert np.array_equal(np.concatenate(parts, axis=1), audio)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(0, delay_samples=0, max_jump_samples=1)
    with pytest.raises(ValueError):
        JitterBuffer(2, delay_samples=0, max_jump_samples=10).push(2, 0, [1])
