"""service.live_mirroring: the mirroring of a call so far, from its blocks computed ahead."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from dsp.io import decode
from dsp.params import AnalysisParams
from service import stage1_ahead
from service.live_mirroring import mirroring_so_far

REPO = Path(__file__).resolve().parents[2]
SR = 8000


def test_the_bundled_calls_planted_following_shows_by_its_fourth_minute(tmp_path: Path) -> None:
    """samples/mirroring_call.opus has the agent following the customer in pitch level and
    speaking rate (samples/mirroring_call.truth.json); four finished minutes already show it."""
    audio = decode(REPO / "samples" / "mirroring_call.opus", max_rate_hz=SR).samples
    pcm = np.round(np.clip(audio[:, : 241 * SR], -1, 1) * 32767).astype(np.int16)
    path = tmp_path / "stream.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(np.ascontiguousarray(pcm.T).tobytes())
    offset = stage1_ahead.wav_data(path)[0]
    params = AnalysisParams().validate()
    assert all(stage1_ahead.compute_block(str(path), offset, SR, i, params) for i in range(4))

    found = mirroring_so_far(str(path), SR, 4, '{"agent_channel": 0}')
    assert found is not None and found["as_of_s"] == 240.0
    for name in ("pitch_level", "speaking_rate"):
        assert found["features"][name]["follower"] == "agent"
        assert found["features"][name]["agent_follows_customer"]["p_adj"] < 0.05
    for dimension in ("tone", "tempo"):
        assert found["scores"][dimension]["agent"]["verdict"] == "above chance"
        assert found["scores"][dimension]["customer"]["verdict"] == "within chance"
    # a block not computed (yet): nothing to say
    assert mirroring_so_far(str(path), SR, 5, '{"agent_channel": 0}') is None
