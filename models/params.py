"""Analysis parameters as clients send them (CLI flags, form fields, query strings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dsp.params import AnalysisParams


class AnalysisConfig(BaseModel):
    """Every tunable of an analysis. Defaults live here, not in the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    agent_channel: Literal[0, 1] = Field(0, description="Channel carrying the agent (0 or 1).")
    window_s: float = Field(30.0, gt=0, le=600, description="Window length for time series, s.")
    hop_s: float = Field(10.0, gt=0, le=600, description="Step between window starts, s.")
    min_pause_s: float = Field(
        0.2, ge=0.05, le=2.0, description="Silences shorter than this do not split an IPU, s."
    )
    segment_join_s: float = Field(
        1.0,
        ge=0.0,
        le=3.0,
        description=(
            "Pauses shorter than this inside a speaker's turn (the partner silent) are joined "
            "in the report's speech segments, s; 0 lists the IPUs."
        ),
    )
    backchannel_max_s: float = Field(
        1.0,
        ge=0.1,
        le=5.0,
        description="Longest IPU inside the partner's turn that counts as a backchannel, s.",
    )
    silence_threshold_s: float = Field(
        3.0, gt=0, le=60, description="Silences (nobody speaking) at least this long are listed, s."
    )
    fmin_hz: float = Field(60.0, ge=30, le=400, description="Lowest pitch searched, Hz.")
    fmax_hz: float = Field(500.0, ge=100, le=1000, description="Highest pitch searched, Hz.")
    verbal: bool = Field(
        False,
        description=(
            "Also recognise words (English) inside each channel's speech and report verbal "
            "mirroring (echoes, echo questions, lexical mirroring). Needs the optional "
            "recogniser (pip install 'mirrorline[verbal]'; without it: verbal.unavailable) "
            "and costs far more than the rest of the analysis (docs/verbal.md)."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisConfig:
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s ({self.hop_s}) must not exceed window_s ({self.window_s})")
        if self.fmin_hz >= self.fmax_hz:
            raise ValueError(f"fmin_hz ({self.fmin_hz}) must be below fmax_hz ({self.fmax_hz})")
        return self

    def to_params(self) -> AnalysisParams:
        return AnalysisParams(**self.model_dump()).validate()
