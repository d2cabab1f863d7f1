"""The mirroring of a live call so far, for its live events.

Every ``MIRRORLINE_LIVE_MIRRORING_S`` of finished minutes, an analysis worker runs the
batch analysis's own decisions and mirroring tests on the stage-1 tracks the stream's
finished blocks already have (``service.stage1_ahead``): the report the call would get if
it ended at that minute, of which the live events carry the part a coaching screen needs
(:func:`live_summary`): the 0-100 following scores with their verdicts and, per feature,
the follower, both directions' synchrony and the convergence trend, with the evidence
(r, corrected p, n). Definitions: docs/mirroring.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsp.io import AudioInfo
from dsp.pipeline import analyze_tracks, with_mirroring
from models.params import AnalysisConfig
from models.report import Mirroring
from service import stage1_ahead


def mirroring_so_far(
    wav_path: str, sample_rate_hz: int, n_blocks: int, config_json: str
) -> dict[str, Any] | None:
    """The live summary of the mirroring of the first ``n_blocks`` blocks of a stream's WAV
    (their tracks and tallies kept by :func:`service.stage1_ahead.compute_block`); None
    when a block is missing or the call is too short for any test."""
    from service.analysis import mirroring_model

    config = AnalysisConfig.model_validate_json(config_json)
    params = config.to_params()
    shape = stage1_ahead.geometry(sample_rate_hz, params)
    if shape is None or n_blocks < 1:
        return None
    block_len, _ = shape
    kept = [stage1_ahead.load_block(Path(wav_path), i, params) for i in range(n_blocks)]
    blocks = [k for k in kept if k is not None]
    if len(blocks) < n_blocks:
        return None
    tracks, tally = stage1_ahead.joined(blocks)
    info = AudioInfo(
        codec="pcm_s16le",
        container="wav",
        channels=2,
        native_rate_hz=sample_rate_hz,
        sample_rate_hz=sample_rate_hz,
        declared_duration_s=None,
    )
    result = with_mirroring(analyze_tracks(tracks, info, tally, params))
    if result.mirroring is None:
        return None
    return live_summary(mirroring_model(result.mirroring), n_blocks * block_len / sample_rate_hz)


def live_summary(mirroring: Mirroring, as_of_s: float) -> dict[str, Any]:
    """What a live event carries of a call's mirroring (``as_of_s``: audio it covers)."""

    def direction(d: Any) -> dict[str, Any]:
        return {"r": d.r, "p_adj": d.p_adj, "n": d.n}

    features = {}
    for name, feature in mirroring.features.items():
        sync = feature.synchrony
        features[name] = {
            "follower": feature.follower,
            "agent_follows_customer": direction(sync.agent_follows_customer),
            "customer_follows_agent": direction(sync.customer_follows_agent),
            "convergence": {
                "value": feature.convergence.value,
                "unit": feature.convergence.unit,
                "p": feature.convergence.p,
            },
        }
    return {
        "as_of_s": round(as_of_s, 2),
        "scores": mirroring.scores.model_dump(mode="json"),
        "features": features,
        "n_exchanges": mirroring.n_exchanges,
    }
