"""service.stage1_ahead: a stream's finished blocks computed ahead give the same tracks."""

from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from dsp.io import decode, iter_blocks
from dsp.params import AnalysisParams
from dsp.pipeline import frame_tracks
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


def _fresh(path: Path, params: AnalysisParams) -> Any:
    info, blocks = iter_blocks(path, block_s=params.block_s)
    return frame_tracks(blocks, info.sample_rate_hz, params)


def _ahead(
    path: Path, params: AnalysisParams, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[int]]:
    """``call_stage1``'s stage 1 of ``path`` and the blocks it had to compute."""
    computed: list[int] = []
    compute = stage1_ahead._block_stage1

    def counted(raw: Any, rate: int, p: AnalysisParams, index: int, *rest: Any) -> Any:
        computed.append(index)
        return compute(raw, rate, p, index, *rest)

    monkeypatch.setattr(stage1_ahead, "_block_stage1", counted)
    kept = stage1_ahead.call_stage1(path, params)
    assert kept is not None
    info, blocks = iter_blocks(path, block_s=params.block_s)
    blocks.close()
    found = kept(info)
    monkeypatch.undo()
    return found, computed


def test_blocks_computed_ahead_are_the_tracks_of_the_whole_call(
    tmp_path: Path, call_pcm: npt.NDArray[np.int16], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stream.wav"
    _wav(path, call_pcm)
    params = AnalysisParams().validate()
    offset, size = stage1_ahead.wav_data(path)
    assert size == call_pcm.size * 2
    # 150 s: blocks 0 and 1 have their right context; block 2 is the last (not ahead)
    done = [stage1_ahead.compute_block(str(path), offset, SR, i, params) for i in range(3)]
    assert done == [True, True, False]
    assert [p.name for p in stage1_ahead.parts(path)] == [
        "stream.wav.stage1-00000.npz",
        "stream.wav.stage1-00001.npz",
    ]
    found, computed = _ahead(path, params, monkeypatch)
    assert computed == [2]  # only the last block, from the file's PCM
    (ahead, ahead_tally), (fresh, fresh_tally) = found, _fresh(path, params)
    for name in ("level_db", "activity_features", "f0_candidates_hz", "f0_strength"):
        np.testing.assert_array_equal(getattr(ahead, name), getattr(fresh, name))
    np.testing.assert_array_equal(ahead.syllable_db, fresh.syllable_db)
    np.testing.assert_array_equal(ahead.sonority_db, fresh.sonority_db)
    # the blocks' own tallies add up to the tally of the same samples block by block
    assert vars(ahead_tally).keys() == vars(fresh_tally).keys()
    for name, value in vars(fresh_tally).items():
        np.testing.assert_array_equal(getattr(ahead_tally, name), value)


def test_blocks_of_other_audio_or_settings_are_computed_again(
    tmp_path: Path, call_pcm: npt.NDArray[np.int16], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stream.wav"
    _wav(path, call_pcm)
    params = AnalysisParams().validate()
    offset, _ = stage1_ahead.wav_data(path)
    assert stage1_ahead.compute_block(str(path), offset, SR, 0, params)
    assert stage1_ahead.compute_block(str(path), offset, SR, 1, params)
    changed = call_pcm.copy()
    changed[0, 90 * SR : 91 * SR] //= 2  # block 1's audio differs from what was computed
    _wav(path, changed)
    (ahead, _), computed = _ahead(path, params, monkeypatch)
    fresh, _ = _fresh(path, params)
    assert computed == [1, 2]
    np.testing.assert_array_equal(ahead.f0_candidates_hz, fresh.f0_candidates_hz)
    np.testing.assert_array_equal(ahead.level_db, fresh.level_db)
    # another pitch range: none is used
    other = AnalysisParams(fmin_hz=75.0).validate()
    (ahead, _), computed = _ahead(path, other, monkeypatch)
    assert computed == [0, 1, 2]
    np.testing.assert_array_equal(ahead.f0_candidates_hz, _fresh(path, other)[0].f0_candidates_hz)


def test_the_call_is_decoded_when_its_file_is_not_the_spooled_wav(
    tmp_path: Path, call_pcm: npt.NDArray[np.int16]
) -> None:
    path = tmp_path / "stream.wav"
    _wav(path, call_pcm[:, : 70 * SR])
    params = AnalysisParams().validate()
    assert stage1_ahead.call_stage1(path, params) is None  # nothing kept
    assert stage1_ahead.compute_block(str(path), stage1_ahead.wav_data(path)[0], SR, 0, params)
    kept = stage1_ahead.call_stage1(path, params)
    assert kept is not None
    info, blocks = iter_blocks(path, block_s=params.block_s)
    blocks.close()
    assert kept(info) is not None
    # another codec or a resampled rate: the job decodes
    assert kept(replace(info, codec="pcm_mulaw")) is None
    assert kept(replace(info, native_rate_hz=48000)) is None
    # a header that does not give the length (a stream cut off mid-write)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"data") + 4
    raw[at : at + 4] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    assert kept(info) is None


def test_moving_and_removing_the_blocks(tmp_path: Path, call_pcm: npt.NDArray[np.int16]) -> None:
    path = tmp_path / "stream-1.wav"
    _wav(path, call_pcm[:, : 70 * SR])
    params = AnalysisParams().validate()
    assert stage1_ahead.compute_block(str(path), stage1_ahead.wav_data(path)[0], SR, 0, params)
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
