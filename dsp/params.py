"""Every tunable of an analysis in one frozen dataclass (cheap to import: no DSP here)."""

from __future__ import annotations

from dataclasses import dataclass

from dsp.errors import ParameterError


@dataclass(frozen=True)
class AnalysisParams:
    """Every tunable of an analysis, with its default (echoed in the report as ``config``)."""

    agent_channel: int = 0
    window_s: float = 30.0
    hop_s: float = 10.0
    min_pause_s: float = 0.2
    min_ipu_s: float = 0.1
    segment_join_s: float = 1.0
    backchannel_max_s: float = 1.0
    silence_threshold_s: float = 3.0
    fmin_hz: float = 60.0
    fmax_hz: float = 500.0
    min_window_speech_s: float = 2.0
    block_s: float = 60.0
    # words, echoes and lexical mirroring (the optional recogniser: dsp.verbal)
    verbal: bool = False

    def validate(self) -> AnalysisParams:
        checks = [
            (
                self.agent_channel in (0, 1),
                f"agent_channel must be 0 or 1, got {self.agent_channel}",
            ),
            (self.window_s > 0 and self.hop_s > 0, "window_s and hop_s must be > 0"),
            (self.hop_s <= self.window_s, f"hop_s ({self.hop_s}) must not exceed window_s"),
            (0.05 <= self.min_pause_s <= 2.0, "min_pause_s must be within 0.05-2 s"),
            (0.0 <= self.min_ipu_s <= 1.0, "min_ipu_s must be within 0-1 s"),
            (0.0 <= self.segment_join_s <= 3.0, "segment_join_s must be within 0-3 s"),
            (0.1 <= self.backchannel_max_s <= 5.0, "backchannel_max_s must be within 0.1-5 s"),
            (self.silence_threshold_s > 0, "silence_threshold_s must be > 0"),
            (
                30.0 <= self.fmin_hz < self.fmax_hz <= 1000.0,
                f"need 30 <= fmin_hz < fmax_hz <= 1000, got {self.fmin_hz}, {self.fmax_hz}",
            ),
            (self.block_s >= 5.0, "block_s must be >= 5 s"),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(message)
        return self
