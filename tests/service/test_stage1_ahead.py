"""service.stage1_ahead: a stream's finished blocks computed ahead give the same tracks."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from dsp.io import decode, iter_blocks
from dsp.params import AnalysisParams
from dsp.pipeline import QualityTally, frame_tracks
from service import stage1_ahead

REPO = Path(__file__).resolve().parents[2]
SR = 8000


def _wav(path: Path, pcm: npt.NDArray[np.int16]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(np.ascontiguousarray(pcm.T).tobytes())


@pytest.fixture(scope="module")
def call_pcm() -> npt.NDArray[np.int16]:
    audio = decode(REPO / "samples" / "mirroring_call.opus", max_rate_hz=SR).samples
    return np.round(np.clip(audio[:, : 150 * SR], -1, 1) * 32767).astype(np.int16)


def _counting(known: Any, used: list[int]) -> Any:
    """``known``, noting in ``used`` the blocks it gave."""

    def counted(index: int, padded: npt.NDArray[np.float32]) -> Any:
        found = known(index, padded)
        if found is not None:
            used.append(index)
        return found

    return counted


def _tracks(path: Path, params: AnalysisParams, known: Any = None) -> Any:
    info, blocks = iter_blocks(path, block_s=params.block_s)
    return frame_tracks(blocks, info.sample_rate_hz, params, known=known)


def test_blocks_computed_ahead_are_the_tracks_of_the_whole_call(
    tmp_path: Path, call_pcm: npt.NDArray[np.int16]
) -> None:
    path = tmp_path / "stream.wav"
    _wav(path, call_pcm)
    params = AnalysisParams().validate()
    offset = stage1_ahead.wav_data_offset(path)
    # 150 s: blocks 0 and 1 have their right context; block 2 is the last (not ahead)
    done = [stage1_ahead.compute_block(str(path), offset, SR, i, params) for i in range(3)]
    assert done == [True, True, False]
    assert [p.name for p in stage1_ahead.parts(path)] == [
        "stream.wav.stage1-00000.npz",
        "stream.wav.stage1-00001.npz",
    ]
    known = stage1_ahead.known_blocks(path, params)
    assert known is not None
    used: list[int] = []
    counted = _counting(known, used)
    ahead, ahead_tally = _tracks(path, params, counted)
    fresh, fresh_tally = _tracks(path, params)
    assert used == [0, 1]
    for name in ("level_db", "activity_features", "f0_candidates_hz", "f0_strength"):
        np.testing.assert_array_equal(getattr(ahead, name), getattr(fresh, name))
    np.testing.assert_array_equal(ahead.syllable_db, fresh.syllable_db)
    np.testing.assert_array_equal(ahead.sonority_db, fresh.sonority_db)
    assert ahead_tally.samples == fresh_tally.samples and ahead_tally.cross == fresh_tally.cross
    # the blocks' own tallies add up to the tally of the same samples block by block
    merged, added = QualityTally(), QualityTally()
    for i in (0, 1):
        kept = stage1_ahead.load_block(path, i, params)
        assert kept is not None
        merged.merge(kept[1])
        added.add(call_pcm[:, i * 60 * SR : (i + 1) * 60 * SR].astype(np.float32) / 32768, SR)
    assert vars(merged).keys() == vars(added).keys()
    for name, value in vars(added).items():
        np.testing.assert_array_equal(getattr(merged, name), value)


def test_blocks_of_other_audio_or_settings_are_computed_again(
    tmp_path: Path, call_pcm: npt.NDArray[np.int16]
) -> None:
    path = tmp_path / "stream.wav"
    _wav(path, call_pcm)
    params = AnalysisParams().validate()
    offset = stage1_ahead.wav_data_offset(path)
    assert stage1_ahead.compute_block(str(path), offset, SR, 0, params)
    assert stage1_ahead.compute_block(str(path), offset, SR, 1, params)
    changed = call_pcm.copy()
    changed[0, 90 * SR : 91 * SR] //= 2  # block 1's audio differs from what was computed
    _wav(path, changed)
    known = stage1_ahead.known_blocks(path, params)
    assert known is not None
    used: list[int] = []
    counted = _counting(known, used)
    ahead, _ = _tracks(path, params, counted)
    fresh, _ = _tracks(path, params)
    assert used == [0]
    np.testing.assert_array_equal(ahead.f0_candidates_hz, fresh.f0_candidates_hz)
    np.testing.assert_array_equal(ahead.level_db, fresh.level_db)
    # another pitch range: none is used
    other = AnalysisParams(fmin_hz=75.0).validate()
    known_other = stage1_ahead.known_blocks(path, other)
    assert known_other is not None
    info, blocks = iter_blocks(path, block_s=other.block_s)
    first = next(iter(blocks))
    assert known_other(0, np.concatenate([first, first[:, :1600]], axis=1)) is None


def test_moving_and_removing_the_blocks(tmp_path: Path, call_pcm: npt.NDArray[np.int16]) -> None:
    path = tmp_path / "stream-1.wav"
    _wav(path, call_pcm[:, : 70 * SR])
    params = AnalysisParams().validate()
    assert stage1_ahead.compute_block(str(path), stage1_ahead.wav_data_offset(path), SR, 0, params)
    target = tmp_path / "an_1.wav"
    path.rename(target)
    stage1_ahead.move(path, target)
    assert [p.name for p in stage1_ahead.parts(target)] == ["an_1.wav.stage1-00000.npz"]
    assert stage1_ahead.is_part_of(stage1_ahead.parts(target)[0], {"an_1.wav"})
    assert not stage1_ahead.is_part_of(target, {"an_1.wav"})
    stage1_ahead.remove(target)
    assert stage1_ahead.parts(target) == []


def test_nothing_is_computed_ahead_where_the_job_would_resample_or_frames_do_not_align() -> None:
    params = AnalysisParams().validate()
    assert stage1_ahead.geometry(8000, params) == (480000, 1600)
    assert stage1_ahead.geometry(16000, params) == (960000, 3200)
    assert stage1_ahead.geometry(48000, params) is None  # decoded at 16 kHz by the job
    assert stage1_ahead.geometry(11025, params) is None  # 60 s is not a whole number of hops
